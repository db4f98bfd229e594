import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import type { KillableReceiver } from './outage.js';
import { sleep } from './wait.js';

/** One request as the receiver took it in. */
export interface ReceivedRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The body as it came over the wire. */
  wire: Buffer;
  /** The body with its Content-Encoding (gzip, deflate) undone. */
  body: Buffer;
  /** When the whole body had arrived, ms since the epoch. */
  at: number;
  /** What the receiver did: the status it answered, or `reset` (the connection was reset, nothing answered). */
  answer: number | 'reset';
}

/**
 * How to answer one request:
 * - `{status, body?, headers?, delayMs?}`: answer after the whole body arrived (and `delayMs` more: a slow peer);
 * - `{reset: 'at-headers'}`: reset the connection as soon as the headers arrived (the body is cut off mid-send);
 * - `{reset: 'after-body'}`: read the whole body, then reset without answering (the sender cannot know it arrived).
 */
export type Answer =
  | { status: number; body?: string | Uint8Array; headers?: Record<string, string>; delayMs?: number }
  | { reset: 'at-headers' | 'after-body' };

/**
 * A burst of faults for a receiver's queue, between successes: 500 and 503, a reset mid-request and one after the
 * whole body (the sender must resend what may have arrived), 429 with Retry-After 0 and with none, a slow answer
 * (`slowMs`), and one slower than the sender's timeout when `timeoutMs` is given.
 */
export function faultBurst({ slowMs = 300, timeoutMs }: { slowMs?: number; timeoutMs?: number } = {}): Answer[] {
  const ok = { status: 200, body: '{}' };
  return [
    ok,
    { status: 500, body: 'internal error' },
    { status: 503, body: 'unavailable' },
    ok,
    { reset: 'at-headers' },
    ok,
    { reset: 'after-body' },
    { status: 429, headers: { 'retry-after': '0' }, body: 'slow down' },
    { status: 429, body: 'slow down' },
    { ...ok, delayMs: slowMs },
    ...(timeoutMs === undefined ? [] : [{ ...ok, delayMs: timeoutMs + 500 }]),
    { status: 502, body: 'bad gateway' },
    ok,
  ];
}

export interface HttpReceiverOptions {
  /** 0 (the default) picks a free port on the first start; later starts reuse it. */
  port?: number;
  /** The answer when none is queued (default: status 200 with an empty JSON object). */
  respond?: (request: ReceivedRequest) => Answer;
  /** The log lines a request carries (a decoder below), for `lines()` and `received()`. */
  linesOf?: (request: ReceivedRequest) => string[];
  /** `received()` reports the number after this label in each line: `<label> <n>`, as numberedLines writes them. */
  label?: string;
}

/**
 * An HTTP/1.1 server on 127.0.0.1 for the HTTP sinks' tests: records every request (Content-Encoding undone with
 * zlib), and misbehaves on purpose from a queue of answers: 5xx, 429 with Retry-After, a reset mid-request or after
 * the body, slow answers, 4xx that must not be retried. Protocol-specific decoding is left to the functions below
 * (NDJSON, JSON array, Splunk HEC events, Loki push JSON), which throw on anything their spec does not allow.
 */
export class HttpReceiver implements KillableReceiver {
  readonly requests: ReceivedRequest[] = [];
  private readonly queued: Answer[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private port: number;
  private readonly pattern: RegExp | undefined;
  private readonly decoded = new WeakMap<ReceivedRequest, string[]>();

  constructor(private readonly options: HttpReceiverOptions = {}) {
    this.port = options.port ?? 0;
    this.pattern = options.label === undefined ? undefined : new RegExp(`^${options.label} (\\d+)(?: |$)`);
  }

  /** The base URL (`http://127.0.0.1:PORT`); valid once started. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Answers for the next requests, in order, before `respond` applies again. */
  queue(...answers: Answer[]): void {
    this.queued.push(...answers);
  }

  /** Requests answered with a 2xx: what the peer took. */
  accepted(): ReceivedRequest[] {
    return this.requests.filter((r) => typeof r.answer === 'number' && r.answer >= 200 && r.answer < 300);
  }

  /** The lines of every accepted request, in the order they arrived (duplicates included). */
  lines(): string[] {
    const linesOf = this.options.linesOf;
    if (linesOf === undefined) throw new Error('HttpReceiver: no linesOf decoder given');
    return this.accepted().flatMap((request) => {
      // Decoded once: tests poll this while the sender is still sending.
      let lines = this.decoded.get(request);
      if (lines === undefined) this.decoded.set(request, (lines = linesOf(request)));
      return lines;
    });
  }

  /** The sequence numbers of the accepted lines that start with the label, duplicates included. */
  received(): number[] {
    const pattern = this.pattern;
    if (pattern === undefined) throw new Error('HttpReceiver: no label given');
    const numbers: number[] = [];
    for (const line of this.lines()) {
      const match = pattern.exec(line);
      if (match !== null) numbers.push(Number(match[1]));
    }
    return numbers;
  }

  async start(): Promise<void> {
    if (this.server !== undefined) return;
    const server = createServer({ keepAlive: true }, (req, res) => void this.handle(req, res));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and resets every connection: requests in progress get no answer. */
  async kill(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
    await closed;
  }

  close(): Promise<void> {
    return this.kill();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const answer = this.queued.shift();
    const base = { method: req.method ?? '', path: req.url ?? '', headers: req.headers };
    if (answer !== undefined && 'reset' in answer && answer.reset === 'at-headers') {
      this.requests.push({ ...base, wire: Buffer.alloc(0), body: Buffer.alloc(0), at: Date.now(), answer: 'reset' });
      req.socket.resetAndDestroy();
      return;
    }
    let wire: Buffer;
    try {
      wire = await readBody(req);
    } catch {
      return; // The sender gave up mid-body: nothing to record.
    }
    const request: ReceivedRequest = { ...base, wire, body: decodeContent(req.headers['content-encoding'], wire), at: Date.now(), answer: 0 };
    this.requests.push(request);
    const chosen = answer ?? this.options.respond?.(request) ?? { status: 200, body: '{}' };
    if ('reset' in chosen) {
      request.answer = 'reset';
      req.socket.resetAndDestroy();
      return;
    }
    if (chosen.delayMs !== undefined) await sleep(chosen.delayMs);
    // A sender that timed out meanwhile closed the connection: it never saw this answer.
    if (req.socket.destroyed) {
      request.answer = 'reset';
      return;
    }
    request.answer = chosen.status;
    res.writeHead(chosen.status, { 'content-type': 'application/json', ...chosen.headers });
    res.end(chosen.body ?? '');
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('aborted')));
  });
}

function decodeContent(encoding: string | undefined, wire: Buffer): Buffer {
  if (encoding === undefined || encoding === 'identity') return wire;
  if (encoding === 'gzip') return gunzipSync(wire);
  if (encoding === 'deflate') return inflateSync(wire);
  throw new Error(`HttpReceiver: unknown Content-Encoding ${encoding}`);
}

/** An application/x-ndjson body: one JSON object per line, every line ending in a newline. */
export function ndjsonRecords(body: Buffer): Record<string, unknown>[] {
  const text = body.toString('utf8');
  if (text !== '' && !text.endsWith('\n')) throw new Error('NDJSON body does not end with a newline');
  return text
    .split('\n')
    .slice(0, -1)
    .map((line) => {
      const value: unknown = JSON.parse(line);
      if (!isObject(value)) throw new Error(`NDJSON line is not an object: ${line.slice(0, 100)}`);
      return value;
    });
}

/** An application/json body that is one array of objects. */
export function jsonArrayRecords(body: Buffer): Record<string, unknown>[] {
  const value: unknown = JSON.parse(body.toString('utf8'));
  if (!Array.isArray(value) || !value.every(isObject)) throw new Error('body is not a JSON array of objects');
  return value;
}

/** A Splunk HEC event, as `/services/collector/event` takes it. */
export interface HecEvent {
  event: unknown;
  time?: number;
  host?: string;
  source?: string;
  sourcetype?: string;
  index?: string;
  fields?: Record<string, string | string[]>;
}

const HEC_KEYS = new Set(['event', 'time', 'host', 'source', 'sourcetype', 'index', 'fields']);

/**
 * A HEC event endpoint body: JSON event objects one after another (whitespace between them optional), as Splunk's
 * collector parses it. Throws where Splunk answers 400: no `event`, an unknown key, `fields` values that are not
 * strings (or arrays of strings), a `time` that is not epoch seconds.
 */
export function hecEvents(body: Buffer): HecEvent[] {
  const text = body.toString('utf8');
  const events: HecEvent[] = [];
  let at = 0;
  for (;;) {
    while (at < text.length && /\s/.test(text[at])) at++;
    if (at === text.length) return events;
    const end = endOfJsonObject(text, at);
    const value: unknown = JSON.parse(text.slice(at, end));
    at = end;
    if (!isObject(value) || !('event' in value)) throw new Error('HEC: an event object needs "event"');
    const unknown = Object.keys(value).find((key) => !HEC_KEYS.has(key));
    if (unknown !== undefined) throw new Error(`HEC: unknown key ${unknown}`);
    if (value.time !== undefined && typeof value.time !== 'number') throw new Error('HEC: time must be epoch seconds');
    if (value.fields !== undefined) {
      const fields = value.fields;
      const flat = (v: unknown): boolean => typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string'));
      if (!isObject(fields) || !Object.values(fields).every(flat)) throw new Error('HEC: fields must be flat strings');
    }
    events.push(value as unknown as HecEvent);
  }
}

/** Where the JSON object starting at `start` ends (one past its closing brace). */
function endOfJsonObject(text: string, start: number): number {
  if (text[start] !== '{') throw new Error(`HEC: expected an object at ${start}`);
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  throw new Error('HEC: unterminated event object');
}

/** One entry of a Loki push: timestamp in ns (a string of digits), the line, and structured metadata (Loki 3). */
export interface LokiEntry {
  ns: bigint;
  line: string;
  metadata?: Record<string, string>;
}

export interface LokiStream {
  labels: Record<string, string>;
  entries: LokiEntry[];
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A `/loki/api/v1/push` JSON body (`{"streams":[{"stream":{...},"values":[[ns, line, {metadata}?], ...]}]}`).
 * Throws where Loki answers 400: no labels, a label name outside `[a-zA-Z_][a-zA-Z0-9_]*` or starting with `__`,
 * a timestamp that is not an integer string, metadata values that are not strings.
 */
export function lokiPush(body: Buffer): LokiStream[] {
  const value: unknown = JSON.parse(body.toString('utf8'));
  if (!isObject(value) || !Array.isArray(value.streams)) throw new Error('Loki: body needs a "streams" array');
  return value.streams.map((stream: unknown): LokiStream => {
    if (!isObject(stream) || !isObject(stream.stream) || !Array.isArray(stream.values)) throw new Error('Loki: a stream needs "stream" and "values"');
    const labels = stream.stream;
    if (Object.keys(labels).length === 0) throw new Error('Loki: a stream without labels');
    for (const [name, v] of Object.entries(labels)) {
      if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`Loki: invalid label name ${name}`);
      if (typeof v !== 'string') throw new Error(`Loki: label ${name} is not a string`);
    }
    const entries = stream.values.map((entry: unknown): LokiEntry => {
      if (!Array.isArray(entry) || entry.length < 2 || entry.length > 3) throw new Error('Loki: an entry is [ts, line] or [ts, line, metadata]');
      const [ts, line, metadata] = entry as unknown[];
      if (typeof ts !== 'string' || !/^\d+$/.test(ts)) throw new Error(`Loki: timestamp ${JSON.stringify(ts)} is not ns as a string`);
      if (typeof line !== 'string') throw new Error('Loki: the line is not a string');
      if (metadata !== undefined && (!isObject(metadata) || !Object.values(metadata).every((v) => typeof v === 'string'))) {
        throw new Error('Loki: structured metadata must map names to strings');
      }
      return { ns: BigInt(ts), line, ...(metadata === undefined ? {} : { metadata: metadata as Record<string, string> }) };
    });
    return { labels: labels as Record<string, string>, entries };
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const started: HttpReceiver[] = [];

/** A started receiver, closed by closeReceivers() (call it in afterEach). */
export async function startReceiver(options: HttpReceiverOptions = {}): Promise<HttpReceiver> {
  const receiver = new HttpReceiver(options);
  started.push(receiver);
  await receiver.start();
  return receiver;
}

export async function closeReceivers(): Promise<void> {
  for (const receiver of started.splice(0)) await receiver.close();
}
