import { DEFAULT_CONFIG, loadConfigFromEnv, type SplitterConfig } from './config.js';
import type { Logger } from '../diagnostics.js';

/**
 * The config a process starts with. An invalid one never stops the helper or a worker: it logs why and keeps the
 * sandbox going alone. `check` may refuse what the caller cannot serve: that config is invalid too.
 */
export function loadConfig(log: Logger, check = (config: SplitterConfig): SplitterConfig => config): SplitterConfig {
  try {
    const config = check(loadConfigFromEnv());
    if (config.sinks.length > 0) log.info({ config: config.source, sinks: config.sinks.map((s) => s.name) }, 'forwarding');
    return config;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'invalid config; running sandbox-only');
    return DEFAULT_CONFIG;
  }
}
