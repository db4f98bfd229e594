import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { ensurePrivateDir } from './private-dir.js';

export class ListenError extends Error {}

/**
 * Readies `path` for listenPrivately: the directory is created 0700, and an existing one must be ours and writable
 * by nobody else (no one can swap the socket). A socket file nobody answers on (a crashed daemon's) is removed; one
 * that answers is another daemon's.
 */
export async function claimSocketPath(path: string): Promise<void> {
  ensurePrivateDir(dirname(path));
  await removeStaleSocket(path);
}

/** Listens on `path`, a socket only root (our uid) can connect to: 0600 from its creation. */
export async function listenPrivately(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer(onConnection);
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new ListenError(`another daemon is already serving ${path}`) : err),
      );
      server.listen(path, resolve);
    });
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  return server;
}

async function removeStaleSocket(path: string): Promise<void> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new ListenError(`${path} exists and is not a socket`);
  const answered = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (answered) throw new ListenError(`another daemon is already serving ${path}`);
  unlinkSync(path);
}
