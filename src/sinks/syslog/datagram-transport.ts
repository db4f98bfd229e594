import type { Socket } from 'node:dgram';

/**
 * Datagrams to one host and port. The socket stays unconnected, so an ICMP "port unreachable" is not reported
 * back: like any UDP sender, a datagram the kernel took counts as sent. Only local failures (no route, no such
 * host) reject, and the batch is then retried whole.
 */
export class DatagramTransport {
  private target: Promise<{ socket: Socket; address: string }> | undefined;
  private closed = false;
  private failWrite: ((err: Error) => void) | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  async write(datagrams: Buffer[]): Promise<void> {
    const { socket, address } = await this.open();
    await new Promise<void>((resolve, reject) => {
      this.failWrite = reject;
      let left = datagrams.length;
      const sent = (err: Error | null): void => {
        if (err) return reject(err);
        if (--left === 0) resolve();
      };
      for (const datagram of datagrams) socket.send(datagram, this.port, address, sent);
    }).finally(() => (this.failWrite = undefined));
  }

  close(): void {
    this.closed = true;
    const target = this.target;
    this.target = undefined;
    this.failWrite?.(new Error('the syslog sink is closed'));
    // Nothing here may reject unhandled: a failed lookup or an already closed socket is fine at this point.
    void target?.then(({ socket }) => socket.close()).catch(() => undefined);
  }

  /** Resolves the host once per socket; a failure (or a socket error) makes the next write start over. */
  private open(): Promise<{ socket: Socket; address: string }> {
    if (this.closed) return Promise.reject(new Error('the syslog sink is closed'));
    // node:dgram and node:dns are loaded here, by the first datagram: helpers without a UDP sink never pay for them.
    const target = (this.target ??= Promise.all([import('node:dns/promises'), import('node:dgram')]).then(async ([dns, dgram]) => {
      const { address, family } = await dns.lookup(this.host);
      const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
      socket.on('error', () => {
        if (this.target === target) this.target = undefined;
        socket.close();
      });
      return { socket, address };
    }));
    target.catch(() => {
      if (this.target === target) this.target = undefined;
    });
    return target;
  }
}
