import { createConnection, type Socket } from 'node:net';

/** Who the entries of one stream connection come from: journald reads it once, from the connection's header. */
export interface StreamHeader {
  identifier: string;
  priority: number;
}

/**
 * The header journald's stdout socket expects: identifier, unit id (none), priority, level prefix (off: a line
 * starting with `<N>` is text), then forward to syslog, kmsg and console (0: journald's own settings decide).
 */
function encodeHeader(header: StreamHeader): string {
  return `${header.identifier.replace(/\n/g, ' ')}\n\n${header.priority}\n0\n0\n0\n0\n`;
}

/**
 * journald's stream socket (`/run/systemd/journal/stdout`, what systemd gives a service's stdout): one line per
 * entry, with the identifier and priority of the connection and no custom fields. The fallback when the native
 * addon is missing. A new header means a new connection.
 */
export class StreamTransport {
  private socket: Socket | undefined;
  private header: StreamHeader | undefined;
  /** An established connection failed: the next one to succeed is a reconnect. */
  private lost = false;

  constructor(
    private readonly path: string,
    private readonly onReconnect: () => void,
  ) {}

  /** Resolves once the kernel took `lines` (each ending in `\n`); rejects when the connection fails. */
  async send(lines: Buffer, header: StreamHeader): Promise<void> {
    if (this.header !== undefined && (this.header.identifier !== header.identifier || this.header.priority !== header.priority)) {
      this.close();
    }
    const socket = this.socket ?? (await this.connect(header));
    await new Promise<void>((resolve, reject) => {
      socket.write(lines, (err) => {
        if (err === undefined || err === null) return resolve();
        this.lost = true;
        this.close();
        reject(new Error(`journald stream socket ${this.path}: ${err.message}`));
      });
    });
  }

  /** Destroys the connection; a pending send rejects. */
  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.header = undefined;
  }

  private connect(header: StreamHeader): Promise<Socket> {
    return new Promise((resolve, reject) => {
      // journald shuts down its sending side as soon as it accepts (it never writes to a stream): with Node's
      // default, that EOF would end our side too and journald would drop the connection after what it had read.
      const socket = createConnection({ path: this.path, allowHalfOpen: true });
      const failure = (why: string): Error => new Error(`journald stream socket ${this.path}: ${why}`);
      this.socket = socket;
      this.header = header;
      let connected = false;
      // Once connected, errors reach the pending write's callback; rejecting a settled promise does nothing.
      socket.on('error', (err) => {
        if (!connected) reject(failure(err.message));
      });
      socket.on('close', () => {
        // Closed by journald or by a failed connect, not by close().
        if (this.socket === socket) {
          if (connected) this.lost = true;
          this.close();
        }
        reject(failure('closed'));
      });
      socket.once('connect', () => {
        connected = true;
        if (this.lost) this.onReconnect();
        this.lost = false;
        socket.write(encodeHeader(header));
        resolve(socket);
      });
    });
  }
}
