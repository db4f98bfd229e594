import { createConnection } from 'node:net';
import { parseArgs } from 'node:util';
import { DEFAULT_SOCKET, daemonSocketPath } from './socket-path.js';
import { parseStatusFrame, ProtocolError, statusRequestFrame } from './protocol.js';
import type { DaemonStatus } from './status.js';
import { formatStatus } from './status-table.js';

const USAGE = `Usage: mesos-log-splitter status [--json] [--socket PATH]

  --json         one JSON document instead of tables
  --socket PATH  the daemon's socket (default: $LOG_SPLITTER_DAEMON_SOCKET or ${DEFAULT_SOCKET})
`;
/** The daemon waits at most daemon.status_timeout_ms for its workers; this bounds everything else. */
const ANSWER_TIMEOUT_MS = 65_000;

/** `mesos-log-splitter status`: the running daemon's streams and sinks. Exit 1 when no daemon answers. */
export async function runStatus(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, socket: { type: 'string' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 1;
  }
  const socket = daemonSocketPath(values.socket);
  let status: DaemonStatus;
  try {
    status = (await askDaemon(socket)) as DaemonStatus;
  } catch (err) {
    process.stderr.write(`mesos-log-splitter status: no answer from a daemon on ${socket}: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return 0;
}

function askDaemon(path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const connection = createConnection(path);
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      connection.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS);
    connection.once('connect', () => connection.write(statusRequestFrame()));
    connection.on('error', fail);
    connection.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      try {
        const status = parseStatusFrame(Buffer.concat(chunks, size));
        if (status === undefined) return;
        clearTimeout(timer);
        connection.destroy();
        resolve(status);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        fail(err);
      }
    });
    connection.on('end', () => fail(new Error('the daemon closed the connection without an answer')));
  });
}
