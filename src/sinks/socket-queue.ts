import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

const ADDON = 'socket_queue.node';
/** Where the addon lies from this file: a release beside the bundle, the repo's dist/ bundle, or src/sinks/. */
export const SOCKET_QUEUE_CANDIDATES = [`./${ADDON}`, `../build/Release/${ADDON}`, `../../build/Release/${ADDON}`];

export interface SocketQueueAddon {
  /** The bytes of the socket's send queue the peer has not acknowledged (Linux SIOCOUTQ); -1 if it cannot tell. */
  unacknowledged(fd: number): number;
}

let native: SocketQueueAddon | null | undefined;

/**
 * The addon (native/socket-queue.c, built by `npm ci`), loaded on first use; null when it is missing or, off Linux,
 * exports nothing.
 */
export function socketQueueAddon(): SocketQueueAddon | null {
  if (native !== undefined) return native;
  native = null;
  const require = createRequire(import.meta.url);
  for (const candidate of SOCKET_QUEUE_CANDIDATES) {
    try {
      const addon = require(candidate) as Partial<SocketQueueAddon>;
      if (typeof addon.unacknowledged === 'function') native = addon as SocketQueueAddon;
      break;
    } catch {
      // Not there, or built for another Node ABI: try the next place.
    }
  }
  return native;
}

/** The file descriptor of a connected net.Socket, from its libuv handle; undefined once it is closed. */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
