import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { waitFor } from './wait.js';

export type SyslogTransport = 'tcp' | 'udp' | 'tls';

const PARSED_FIELDS = ['pri', 'timereported', 'hostname', 'app-name', 'procid', 'msgid', 'structured-data', 'msg'] as const;
export type ParsedMessage = Record<(typeof PARSED_FIELDS)[number], string>;

/** Files made with openssl: a CA, a server cert for 127.0.0.1/localhost and a client cert, both signed by it. */
export interface TestCerts {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A second CA that signed nothing here: trusting only it must make verification fail. */
  otherCa: string;
}

export function makeCerts(dir: string): TestCerts {
  mkdirSync(dir, { recursive: true });
  const path = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const newKeyAndCsr = (name: string, cn: string): void =>
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path(`${name}.key`),
      '-out', path(`${name}.csr`), '-subj', `/CN=${cn}`);
  const selfSigned = (name: string, cn: string): void =>
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path(`${name}.key`),
      '-out', path(`${name}.pem`), '-days', '2', '-subj', `/CN=${cn}`);
  const sign = (name: string, extensions: string): void => {
    writeFileSync(path(`${name}.ext`), extensions);
    openssl('x509', '-req', '-in', path(`${name}.csr`), '-CA', path('ca.pem'), '-CAkey', path('ca.key'), '-CAcreateserial',
      '-out', path(`${name}.pem`), '-days', '2', '-extfile', path(`${name}.ext`));
  };
  selfSigned('ca', 'mesos-log-splitter test CA');
  selfSigned('other-ca', 'untrusted test CA');
  newKeyAndCsr('server', 'localhost');
  sign('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  newKeyAndCsr('client', 'mesos-log-splitter');
  sign('client', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: path('ca.pem'),
    serverCert: path('server.pem'),
    serverKey: path('server.key'),
    clientCert: path('client.pem'),
    clientKey: path('client.key'),
    otherCa: path('other-ca.pem'),
  };
}

export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** A real rsyslogd, private to one test file: its own config, work directory and PID file, three loopback listeners. */
export class Rsyslog {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    readonly ports: Record<SyslogTransport, number>,
    readonly certs: TestCerts,
  ) {}

  /** Writes the config; `start()` runs the daemon. */
  static async create(): Promise<Rsyslog> {
    const dir = mkdtempSync(join(tmpdir(), 'mls-rsyslog-'));
    const ports = { tcp: await freeTcpPort(), udp: await freeUdpPort(), tls: await freeTcpPort() };
    const rsyslog = new Rsyslog(dir, ports, makeCerts(join(dir, 'certs')));
    rsyslog.writeConfig();
    return rsyslog;
  }

  /** What one listener received: each message's raw bytes (%rawmsg%: no framing) then a newline. */
  received(transport: SyslogTransport): Buffer {
    const file = this.file(transport);
    return existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
  }

  /** How rsyslogd's RFC 5424 parser understood each message: proof the framing and structured data are valid. */
  parsed(transport: SyslogTransport): ParsedMessage[] {
    const file = `${this.file(transport)}.parsed`;
    if (!existsSync(file)) return [];
    const text = readFileSync(file, 'utf8');
    return text === ''
      ? []
      : text
          .replace(/\n$/, '')
          .split('\n')
          .map((line) => {
            const values = line.split('\t');
            // MSG may hold tabs: everything after the last header field is MSG.
            const fields = [...values.slice(0, PARSED_FIELDS.length - 1), values.slice(PARSED_FIELDS.length - 1).join('\t')];
            return Object.fromEntries(PARSED_FIELDS.map((name, i) => [name, fields[i]])) as ParsedMessage;
          });
  }

  /** Received messages as strings, one per line (messages here never hold a newline). */
  messages(transport: SyslogTransport): string[] {
    const text = this.received(transport).toString('utf8');
    return text === '' ? [] : text.replace(/\n$/, '').split('\n');
  }

  async waitForMessages(transport: SyslogTransport, count: number, timeoutMs = 10_000): Promise<string[]> {
    return waitFor(
      () => {
        const messages = this.messages(transport);
        return messages.length >= count && messages;
      },
      { timeoutMs, intervalMs: 20, what: `${count} messages on ${transport} (have ${this.messages(transport).length})` },
    );
  }

  /** Starts rsyslogd in the foreground and waits until every listener is up. */
  async start(): Promise<void> {
    if (this.child !== undefined) throw new Error('rsyslogd is already running');
    const child = spawn('rsyslogd', ['-n', '-f', join(this.dir, 'rsyslog.conf'), '-i', join(this.dir, 'rsyslogd.pid')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const stderr: Buffer[] = [];
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => {
      if (this.child === child) this.child = undefined;
    });
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`rsyslogd exited: ${Buffer.concat(stderr).toString()}`);
        return (await canConnect(this.ports.tcp)) && (await canConnect(this.ports.tls)) && this.udpBound();
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'rsyslogd listeners' },
    );
  }

  /** SIGSTOP: rsyslogd stops reading while its sockets stay open, so the kernel buffers fill as with a hung peer. */
  hang(): void {
    this.child?.kill('SIGSTOP');
  }

  /**
   * SIGKILL (whatever it had not written is gone; tests wait for their messages before stopping it) or SIGTERM
   * (it drains its queues, which takes rsyslogd about 1.5 s). Waits for the exit.
   */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGKILL'): Promise<void> {
    this.child?.kill(signal);
    await this.exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private file(transport: SyslogTransport): string {
    return join(this.dir, `${transport}.log`);
  }

  private udpBound(): boolean {
    const hexPort = `:${this.ports.udp.toString(16).toUpperCase().padStart(4, '0')} `;
    return readFileSync('/proc/net/udp', 'utf8').includes(`0100007F${hexPort}`);
  }

  private writeConfig(): void {
    const { dir, ports, certs } = this;
    mkdirSync(join(dir, 'work'));
    const output = (transport: SyslogTransport): string =>
      `ruleset(name="${transport}") {
  action(type="omfile" file="${this.file(transport)}" template="raw")
  action(type="omfile" file="${this.file(transport)}.parsed" template="parsed")
}`;
    const field = (name: string, extra = ''): string => `property(name="${name}"${extra}) constant(value="\t")`;
    // No imuxsock/imklog: only the three loopback listeners. Control characters are kept as sent, so tests can
    // compare bytes; rsyslogd's own messages go to their own file.
    const config = `
global(workDirectory="${join(dir, 'work')}" maxMessageSize="256k" parser.escapeControlCharactersOnReceive="off")
module(load="imtcp")
module(load="imudp")
template(name="raw" type="string" string="%rawmsg%\\n")
template(name="parsed" type="list") {
  ${PARSED_FIELDS.slice(0, -1).map((name) => field(name, name === 'timereported' ? ' dateFormat="rfc3339"' : '')).join('\n  ')}
  property(name="msg") constant(value="\\n")
}
${output('tcp')}
${output('udp')}
${output('tls')}
input(type="imtcp" address="127.0.0.1" port="${ports.tcp}" ruleset="tcp")
input(type="imudp" address="127.0.0.1" port="${ports.udp}" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="${ports.tls}" ruleset="tls"
  streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid"
  streamDriver.CAFile="${certs.ca}" streamDriver.CertFile="${certs.serverCert}" streamDriver.KeyFile="${certs.serverKey}")
*.* action(type="omfile" file="${join(dir, 'rsyslogd.log')}")
`;
    writeFileSync(join(dir, 'rsyslog.conf'), config);
  }
}

/** One rsyslogd for the calling test file: started before its tests, disposed after them. Call at module level. */
export function rsyslogForFile(): () => Rsyslog {
  let rsyslog: Rsyslog | undefined;
  beforeAll(async () => {
    rsyslog = await Rsyslog.create();
    await rsyslog.start();
  });
  afterAll(async () => {
    await rsyslog?.dispose();
  });
  return () => rsyslog!;
}
