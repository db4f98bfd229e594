import { fstatSync } from 'node:fs';
import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import type { Readable } from 'node:stream';

/**
 * The read end of the task's pipe (fd 0), read into one reused buffer instead of a fresh 64 KiB Buffer per read.
 * Per-read allocation leaves up to ~32 MB of dead ArrayBuffers between V8's young-generation GCs: most of the
 * helper's peak RSS. The price: a 'data' chunk is BORROWED, valid only until the handler returns. A consumer that
 * keeps bytes must copy them (SandboxWriter.write does). Anything but a pipe or socket falls back to process.stdin.
 */
export function openPipeSource(fd = 0, bufferSize = 64 * 1024): Readable {
  let stat;
  try {
    stat = fstatSync(fd);
  } catch {
    return process.stdin;
  }
  if (!stat.isFIFO() && !stat.isSocket()) return process.stdin;
  return readBorrowed({ fd }, bufferSize);
}

/** A pipe handle a daemon worker received over IPC (child_process's raw handle: it is not read until wrapped). */
export type PipeHandle = object;

/** The same for a pipe handed over by the daemon. */
export function openPipeHandle(handle: PipeHandle, bufferSize = 64 * 1024): Readable {
  return readBorrowed({ handle }, bufferSize);
}

function readBorrowed(from: { fd: number } | { handle: PipeHandle }, bufferSize: number): Readable {
  const onread: OnReadOpts = {
    buffer: Buffer.allocUnsafeSlow(bufferSize),
    // Always true: a handler that must wait calls pause(), which in this mode stops reading at once.
    callback: (nread, buffer) => (socket.emit('data', buffer.subarray(0, nread)), true),
  };
  // Node >= 15 takes `onread` in the constructor too; @types/node lists it only for connect(), and `handle` not at all.
  const socket: Socket = new Socket({ ...from, readable: true, writable: false, onread } as unknown as SocketConstructorOpts);
  return socket;
}
