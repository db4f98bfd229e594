import { stringify } from 'yaml';
import { describeConfig, loadConfigFile, loadConfigFromEnv } from '../config/config.js';

/** `mesos-log-splitter check-config [FILE]`: validate and print the effective configuration. */
export function runCheckConfig(argv: string[]): number {
  if (argv.length > 1) {
    process.stderr.write('Usage: mesos-log-splitter check-config [FILE]\n');
    return 1;
  }
  try {
    const config = argv.length === 1 ? loadConfigFile(argv[0], false) : loadConfigFromEnv();
    process.stdout.write(stringify(describeConfig(config)));
    return 0;
  } catch (err) {
    process.stderr.write(`invalid config: ${(err as Error).message}\n`);
    return 1;
  }
}
