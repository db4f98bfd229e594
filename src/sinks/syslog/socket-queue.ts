import type { Socket } from 'node:net';
import { loadNativeAddon } from '../../native-addon.js';

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
  const addon = loadNativeAddon<Partial<SocketQueueAddon>>('socket_queue');
  native = typeof addon?.unacknowledged === 'function' ? (addon as SocketQueueAddon) : null;
  return native;
}

/** The file descriptor of a connected net.Socket, from its libuv handle; undefined once it is closed. */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
