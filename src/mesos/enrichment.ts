import type { Logger } from '../diagnostics.js';
import { AgentStateClient, enrichFromState, ResponseTooLarge, type AgentConfig } from './agent-state.js';
import type { StreamMetadata } from './metadata.js';

/** Retry schedule: the helper starts before the agent lists the task, so the first answers often lack it. */
const RETRY_MS = [0, 1000, 2000, 4000, 8000, 15_000, 30_000, 60_000];

/**
 * Asks the agent who owns this sandbox, in the background, and hands over the enriched metadata once found.
 * Lines never wait for it: until then they carry the path metadata. Returns a function that stops retrying.
 */
export function enrichInBackground(
  meta: StreamMetadata,
  agent: AgentConfig,
  log: Logger,
  apply: (meta: StreamMetadata) => void,
  client = new AgentStateClient(agent.url, agent.timeoutMs, agent.maxResponseBytes),
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const attempt = (index: number): void => {
    timer = setTimeout(async () => {
      let lastError = 'the agent does not list this sandbox yet';
      try {
        const enriched = enrichFromState(meta, await client.state());
        if (enriched !== undefined && !stopped) {
          log.debug({ task_id: enriched.task_id, framework_name: enriched.framework_name }, 'agent metadata found');
          apply(enriched);
          if (enriched.task_id !== undefined) return;
        }
      } catch (err) {
        if (err instanceof ResponseTooLarge) {
          const { url, maxBytes } = err;
          const message = "the agent's /state is over agent.max_response_bytes; not asking again";
          log.error({ url, maxBytes }, `${message}, forwarding with path metadata`);
          return;
        }
        lastError = (err as Error).message;
      }
      if (stopped) return;
      if (index + 1 < RETRY_MS.length) attempt(index + 1);
      else log.info({ url: agent.url, err: lastError }, 'no task metadata from the agent; forwarding with path metadata');
    }, RETRY_MS[index]);
    timer.unref();
  };
  attempt(0);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * Enrichment for one stream as its config changes: running while some sink wants lines and `agent.enrich` is on,
 * restarted when the agent settings change. A sandbox-only stream never calls the agent.
 */
export class StreamEnrichment {
  private stop: (() => void) | undefined;
  private settings = '';

  constructor(
    private readonly meta: StreamMetadata,
    private readonly log: Logger,
    private readonly apply: (meta: StreamMetadata) => void,
  ) {}

  /** Enriches while `wanted` (some sink wants lines and `agent.enrich` is on), with these agent settings. */
  configure(agent: AgentConfig, wanted: boolean): void {
    const settings = agent.enrich && wanted ? JSON.stringify(agent) : '';
    if (settings === this.settings) return;
    this.close();
    this.settings = settings;
    if (settings !== '') this.stop = enrichInBackground(this.meta, agent, this.log, this.apply);
  }

  close(): void {
    this.stop?.();
    this.stop = undefined;
  }
}
