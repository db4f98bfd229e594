// First: SIGUSR1 must never open the inspector, and SIGHUP is held from the first moment (see the modules).
import './cli/sigusr1.js';
import './cli/sighup.js';
import { runCheckConfig } from './cli/check-config.js';
import { runLogrotateLogger } from './cli/logrotate-logger.js';
import { runStatus } from './daemon/status-command.js';
import { runDaemon } from './daemon/daemon.js';
import { runDaemonWorker } from './daemon/worker.js';

const USAGE = `Usage: mesos-log-splitter <command>

Commands:
  mesos-logrotate-logger [flags]   the agent's per-stream helper (what bin/mesos-logrotate-logger runs)
  daemon [--socket PATH] [--state-dir DIR] [--worker-idle-ms N]
                                   the per-agent daemon that serves the streams the shims hand over
                                   (docs/daemon.md)
  status [--json] [--socket PATH]  the running daemon's streams and sinks (exit 1: no daemon answers)
  check-config [FILE]              validate a config (default: $LOG_SPLITTER_CONFIG or
                                   /etc/mesos-log-splitter/config.yaml) and print the effective settings
  help                             this text
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'mesos-logrotate-logger':
      return runLogrotateLogger(rest);
    case 'daemon':
      return runDaemon(rest);
    case 'status':
      return runStatus(rest);
    case 'daemon-worker':
      return runDaemonWorker(rest);
    case 'check-config':
      return runCheckConfig(rest);
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`Unknown command '${command ?? ''}'\n\n${USAGE}`);
      return 1;
  }
}

/** How long exit waits for a reader of stdout or stderr that takes nothing (the agent's log must not hold a helper). */
const FLUSH_LIMIT_MS = 2000;

/**
 * Resolves once everything written to `stream` reached the kernel, or after FLUSH_LIMIT_MS. On a pipe Node writes
 * asynchronously: what a slow reader has not made room for yet is still queued in the process, and process.exit
 * would drop it.
 */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    // A reader that went away (EPIPE) takes nothing more: nothing to wait for, and no uncaught error.
    stream.once('error', () => resolve());
    setTimeout(resolve, FLUSH_LIMIT_MS);
    stream.write('', () => resolve());
  });
}

/** Exit explicitly once the output is out: the stream is done, so lingering handles must not delay the agent. */
async function exitWith(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

main(process.argv.slice(2)).then(exitWith, (err) => {
  process.stderr.write(`mesos-log-splitter: ${(err as Error).stack ?? String(err)}\n`);
  return exitWith(1);
});
