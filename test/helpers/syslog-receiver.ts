import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { KillableReceiver } from './outage.js';
import type { SyslogTransport, TestCerts } from './rsyslog.js';
import { sleep, waitFor } from './wait.js';

/**
 * A syslog receiver in the test process that can be killed and restarted in milliseconds (rsyslogd takes a while to
 * start). TCP and TLS: RFC 6587 octet counting; UDP: one message per datagram. It records the number after `label`
 * in each message. A kill resets every connection (what the kernel held unread is gone), closes the listener, so
 * connecting is refused until `start()`, and loses the last `queueBytes` of messages it had read, as a receiver
 * dies with the messages in its own queue not yet written out (a sender sees none of that).
 *
 * UDP: a kill keeps the port and discards what arrives until `start()`. The sender cannot tell the difference (an
 * unconnected socket never hears of a closed port), and the receiver can count exactly what it lost (`lostUnseen`).
 */
export class SyslogReceiver implements KillableReceiver {
  private server: Server | undefined;
  private udp: UdpSocket | undefined;
  private readonly sockets = new Set<Socket>();
  /** Each recorded number, and how many message bytes had been read when it was. */
  private readonly numbers: number[] = [];
  private readonly readAt: number[] = [];
  private bytesRead = 0;
  private readonly pattern: RegExp;
  /** UDP: killed, so datagrams are discarded; and how many were. */
  private down = false;
  private discarded = 0;

  constructor(
    readonly transport: SyslogTransport,
    readonly port: number,
    label: string,
    private readonly certs?: TestCerts,
    private readonly queueBytes = 0,
  ) {
    this.pattern = new RegExp(`\\] ${label} (\\d+)(?: |$)`);
  }

  received(): number[] {
    return this.numbers;
  }

  async start(): Promise<void> {
    this.down = false;
    if (this.transport === 'udp') {
      if (this.udp !== undefined) return;
      const socket = createSocket('udp4');
      socket.on('message', (message) => this.take(message.toString('latin1')));
      await new Promise<void>((resolve) => socket.bind(this.port, '127.0.0.1', resolve));
      this.udp = socket;
      return;
    }
    const onConnection = (socket: Socket): void => {
      socket.on('error', () => undefined);
      let pending: Buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let at = 0;
        for (;;) {
          const space = pending.indexOf(0x20, at);
          if (space < 0) break;
          const length = Number(pending.toString('latin1', at, space));
          if (space + 1 + length > pending.length) break;
          this.take(pending.toString('latin1', space + 1, space + 1 + length));
          at = space + 1 + length;
        }
        pending = pending.subarray(at);
      });
    };
    const server =
      this.transport === 'tls'
        ? createTlsServer(
            {
              key: readFileSync(this.certs!.serverKey),
              cert: readFileSync(this.certs!.serverCert),
              ca: readFileSync(this.certs!.ca),
              requestCert: true,
              rejectUnauthorized: true,
            },
            onConnection,
          )
        : createTcpServer(onConnection);
    // The TCP connection, under TLS too: a kill resets it.
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    });
    // A reset mid-handshake.
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Once the sender is gone: every connection read to its end (TCP, TLS), or no datagram for 200 ms (UDP). */
  async drained(): Promise<void> {
    if (this.transport !== 'udp') {
      await waitFor(() => this.sockets.size === 0, { timeoutMs: 10_000, what: 'the connections to close' });
      return;
    }
    for (let count = -1; count !== this.numbers.length; ) {
      count = this.numbers.length;
      await sleep(200);
    }
  }

  /** UDP: the lines discarded while down plus the datagrams the kernel dropped at the socket (its buffer was full). */
  lostUnseen(): number {
    const port = `:${this.port.toString(16).toUpperCase().padStart(4, '0')} `;
    const socket = readFileSync('/proc/net/udp', 'latin1')
      .split('\n')
      .find((line) => line.includes(`0100007F${port}`));
    const drops = socket === undefined ? 0 : Number(socket.trim().split(/\s+/).at(-1));
    return this.discarded + drops;
  }

  /** Stops for good (UDP: unbinds). */
  async close(): Promise<void> {
    await this.kill();
    const udp = this.udp;
    this.udp = undefined;
    if (udp !== undefined) await new Promise<void>((resolve) => udp.close(() => resolve()));
  }

  async kill(): Promise<void> {
    this.down = true;
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) if (!socket.destroyed) socket.resetAndDestroy();
    this.sockets.clear();
    await closed;
    while (this.readAt.length > 0 && this.readAt[this.readAt.length - 1] > this.bytesRead - this.queueBytes) {
      this.readAt.pop();
      this.numbers.pop();
    }
  }

  private take(message: string): void {
    this.bytesRead += message.length;
    const match = this.pattern.exec(message);
    if (match === null) return;
    if (this.down) {
      this.discarded++;
      return;
    }
    this.numbers.push(Number(match[1]));
    this.readAt.push(this.bytesRead);
  }
}
