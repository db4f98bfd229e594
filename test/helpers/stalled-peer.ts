import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface StalledPeer {
  port: number;
  /** The accepted connections, paused: they hold whatever reached them. */
  sockets: Set<Socket>;
  /** How many connections it accepted. */
  connections(): number;
  close(): Promise<void>;
}

/** A loopback TCP server that accepts connections and never reads or answers: a hung receiver or agent. */
export async function startStalledPeer(): Promise<StalledPeer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.pause();
    socket.on('error', () => undefined);
    sockets.add(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    connections: () => connections,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
