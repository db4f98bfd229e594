// The elasticsearch sink through the built helper: a real pipe, 64 KiB writes, and a `_bulk` receiver that answers
// per item (429s to retry, 400 mapper errors to reject) and misbehaves per request (500, 429 + Retry-After, resets,
// slow answers, 400).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/config.js';
import { validIndexName } from '../src/sinks/elasticsearch/index-name.js';
import { BulkReceiver, ITEM_429, ITEM_MAPPER_400, type BulkReceiverOptions } from './helpers/bulk-receiver.js';
import { chunks, numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon } from './helpers/daemon.js';
import { agentEnv } from './helpers/env.js';
import {
  endAndSummarize,
  expectEveryLineAccounted,
  OUTAGES,
  startHelperWithSink,
  streamWithOutages,
} from './helpers/outage.js';
import { makeCerts } from './helpers/rsyslog.js';
import { makeSandbox } from './helpers/sandbox.js';
import { expectSummaryAddsUp, spawnLogger, type Diagnostic, type PipedProcess } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';

const SHUTDOWN_MS = 15_000;
const ARRIVAL = 64 * 1024;

const receivers: BulkReceiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function receiver(options: BulkReceiverOptions = {}): Promise<BulkReceiver> {
  const r = new BulkReceiver({ dataStreams: ['logs-*'], ...options });
  receivers.push(r);
  await r.start();
  return r;
}

/** The helper for a Mesos sandbox path (the ids come from it) with `sinks`; enrichment off. */
async function start(sinks: Record<string, unknown>, stream: 'stdout' | 'stderr' = 'stdout', shutdownMs = SHUTDOWN_MS) {
  const work = makeSandbox().dir;
  const logFilename = join(work, 'slaves/S1/frameworks/F1-Web/executors/E1/runs/C1', stream);
  mkdirSync(dirname(logFilename), { recursive: true });
  const configFile = join(work, 'config.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({ agent: { enrich: false }, lines: { max_line_bytes: '1KB' }, shutdown_timeout_ms: shutdownMs, sinks }),
  );
  const helper = await spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: agentEnv({ LOG_SPLITTER_CONFIG: configFile }) });
  return { helper, logFilename };
}

/** Writes `input` in 64 KiB arrivals. */
async function writeAll(helper: PipedProcess, input: Buffer): Promise<void> {
  for (const chunk of chunks(input, ARRIVAL)) await helper.write(chunk);
}

async function endHelper(helper: PipedProcess): Promise<Map<string, Diagnostic>> {
  await helper.end();
  const exit = await helper.exited;
  expect(exit.code, helper.stderr()).toBe(0);
  return new Map(helper.diagnostics().filter((d) => d.msg === 'sink summary').map((d) => [d.sink as string, d]));
}

/** Sequence numbers in the order first received; each appears once. */
function firstArrivals(received: number[]): number[] {
  const seen = new Set<number>();
  return received.filter((n) => !seen.has(n) && seen.add(n));
}

const ascending = (numbers: number[]): boolean => numbers.every((n, i) => i === 0 || numbers[i - 1] < n);

describe('elasticsearch sink in the helper', () => {
  it('sends each line as a document through _bulk: fields, data stream create, gzip, NDJSON; the sandbox stays exact', async () => {
    const es = await receiver();
    const { helper, logFilename } = await start({ es: { type: 'elasticsearch', url: es.url, batch: { max_delay_ms: 10 } } }, 'stderr');
    const input = Buffer.concat([
      Buffer.from('plain "quoted" \\ line\n'),
      Buffer.from('crlf\r\n'),
      Buffer.from('controls \t\x01\x1b[31m\x7f \u2028 é a\rb \b\f\n'),
      Buffer.from([...Buffer.from('bad '), 0xc3, 0x28, 0x0a]),
      Buffer.from(`long ${'L'.repeat(1500)}\n`),
      Buffer.from('last, no newline'),
    ]);
    await helper.write(input);
    const summaries = await endHelper(helper);
    expect(readFileSync(logFilename).equals(input)).toBe(true);

    const long = `long ${'L'.repeat(1500)}`;
    expect(es.stored.map((d) => [d.action, d.index, d.source.message, d.source.partial])).toEqual([
      ['create', 'logs-mesos-default', 'plain "quoted" \\ line', undefined],
      ['create', 'logs-mesos-default', 'crlf', undefined],
      ['create', 'logs-mesos-default', 'controls \t\x01\x1b[31m\x7f \u2028 é a\rb \b\f', undefined],
      ['create', 'logs-mesos-default', 'bad \ufffd(', undefined],
      ['create', 'logs-mesos-default', long.slice(0, 1024), true],
      ['create', 'logs-mesos-default', long.slice(1024), undefined],
      ['create', 'logs-mesos-default', 'last, no newline', true],
    ]);
    const doc = es.stored[0].source;
    expect(doc['@timestamp']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Math.abs(Date.parse(doc['@timestamp'] as string) - Date.now())).toBeLessThan(60_000);
    expect(doc).toEqual({
      '@timestamp': doc['@timestamp'],
      message: 'plain "quoted" \\ line',
      stream: 'stderr',
      hostname: hostname(),
      agent_id: 'S1',
      framework_id: 'F1-Web',
      executor_id: 'E1',
      container_id: 'C1',
      log: { level: 'error' },
    });
    const request = es.http.accepted()[0];
    expect(request.headers['content-type']).toBe('application/x-ndjson');
    expect(request.headers['content-encoding']).toBe('gzip');
    expect(request.headers.authorization).toBeUndefined();
    expect(request.path).toBe('/_bulk?filter_path=errors%2Citems.*.status%2Citems.*.error.type%2Citems.*.error.reason');
    const summary = summaries.get('es');
    expect(summary).toMatchObject({ type: 'elasticsearch', linesIn: 6, linesSent: 6, linesDropped: 0, bufferedLines: 0 });
    expectSummaryAddsUp(summary, helper.written());
  });

  it('index mode: `index` actions into a name rendered from metadata and the date, lowercased; the url path and query are kept', async () => {
    const es = await receiver({ label: 'idx' });
    const { helper } = await start({
      es: {
        type: 'elasticsearch',
        url: `${es.url}/proxy/?pipeline=mesos`,
        mode: 'index',
        index: 'mesos-{framework_id}-{stream}-{date}',
        compression: 'none',
        batch: { max_delay_ms: 10 },
      },
    });
    const before = new Date();
    await writeAll(helper, numberedLines(2000, 100, 'idx'));
    const summaries = await endHelper(helper);
    const after = new Date();
    const day = (d: Date): string => `${d.getUTCFullYear()}.${String(d.getUTCMonth() + 1).padStart(2, '0')}.${String(d.getUTCDate()).padStart(2, '0')}`;
    const names = new Set(es.stored.map((d) => `${d.action} ${d.index}`));
    expect([...names].every((n) => n === `index mesos-f1-web-stdout-${day(before)}` || n === `index mesos-f1-web-stdout-${day(after)}`)).toBe(true);
    expect(es.received()).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    const request = es.http.accepted()[0];
    expect(request.headers['content-encoding']).toBeUndefined();
    expect(request.path).toMatch(/^\/proxy\/_bulk\?pipeline=mesos&filter_path=/);
    expect(summaries.get('es')).toMatchObject({ linesIn: 2000, linesSent: 2000, linesDropped: 0 });
  });

  it('a rendered name Elasticsearch would refuse is made valid: a leading _ of an unknown field gets mesos-', async () => {
    const es = await receiver();
    // task_name is unknown without enrichment: it renders as `_`.
    const { helper } = await start({ es: { type: 'elasticsearch', url: es.url, mode: 'index', index: '{task_name}-{executor_id}' } });
    await helper.write('one\n');
    const summaries = await endHelper(helper);
    expect(es.stored.map((d) => d.index)).toEqual(['mesos-_-e1']);
    expect(summaries.get('es')).toMatchObject({ linesSent: 1, linesDropped: 0 });
  });

  it('per-item results: 429 items are sent again (only they, in order) until taken; 400 mapper errors are counted rejected with the reason', async () => {
    const total = 6000;
    const rejectedLine = (n: number): boolean => n % 97 === 3;
    const throttled = (n: number): boolean => n % 7 === 0;
    const number = (message: unknown): number => Number(/^items (\d+) /.exec(String(message))![1]);
    const es = await receiver({
      label: 'items',
      answer: (doc, attempt) => {
        const n = number(doc.source.message);
        if (rejectedLine(n)) return ITEM_MAPPER_400;
        // Twice for some: the retry of a retry is narrower still.
        if (throttled(n) && attempt < (n % 2 === 0 ? 2 : 1)) return ITEM_429;
        return undefined;
      },
    });
    const { helper } = await start({ es: { type: 'elasticsearch', url: es.url, batch: { max_lines: 500, max_delay_ms: 10 } } });
    await writeAll(helper, numberedLines(total, 120, 'items'));
    const summaries = await endHelper(helper);

    const expected = Array.from({ length: total }, (_, n) => n).filter((n) => !rejectedLine(n));
    const received = es.received();
    // Every line not refused for good arrived, each exactly once (only the 429 items were sent again).
    expect([...received].sort((a, b) => a - b)).toEqual(expected);
    // Lines never throttled arrive in order; so do those throttled once, and those throttled twice, among themselves.
    expect(ascending(received.filter((n) => !throttled(n)))).toBe(true);
    expect(ascending(received.filter((n) => throttled(n) && n % 2 === 1))).toBe(true);
    expect(ascending(received.filter((n) => throttled(n) && n % 2 === 0))).toBe(true);
    // A retry carries only the documents still owed: no request holds a line already stored.
    const retried = es.http.accepted().filter((r) => r.body.toString().includes('"items 7 '));
    expect(retried.length).toBe(2);
    expect(retried[1].body.toString().split('\n').length - 1).toBeLessThan(2 * 80);
    const refusedMessages = es.refused.filter(([, a]) => a.status === 400).map(([m]) => number(m));
    expect([...new Set(refusedMessages)].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, n) => n).filter(rejectedLine));
    expect(refusedMessages.length).toBe(new Set(refusedMessages).size);

    const summary = summaries.get('es')!;
    const rejected = total - expected.length;
    expect(summary).toMatchObject({ linesIn: total, linesSent: expected.length, linesDropped: rejected, bufferedLines: 0 });
    expect(summary.droppedBy).toEqual({ rejected: { lines: rejected, bytes: rejected * 120 } });
    expect(summary.failedSends).toBeGreaterThan(0);
    expectSummaryAddsUp(summary, helper.written());
    const logged = helper.diagnostics().find((d) => d.msg.startsWith('elasticsearch refused documents'));
    expect(logged, helper.stderr()).toBeDefined();
    expect(logged!.err).toMatch(/^400 mapper_parsing_exception: failed to parse field \[message\]/);
    const retryLog = helper.diagnostics().find((d) => d.msg === 'sink send failed; will retry');
    expect(retryLog!.err).toMatch(/did not take \d+ of \d+ documents \(429 es_rejected_execution_exception/);
  });

  it('whole-request faults (500, 429 + Retry-After, resets before and after the body, a slow answer) are retried: every line arrives, in order', async () => {
    const es = await receiver({ label: 'faults' });
    es.http.queue(
      { status: 500, body: '{"error":"boom"}' },
      { status: 429, body: '{"error":"too many"}', headers: { 'retry-after': '1' } },
      { reset: 'at-headers' },
      { reset: 'after-body' },
      { status: 503, body: 'unavailable', delayMs: 300 },
      { status: 200, body: '<html>a proxy page</html>' },
    );
    const { helper } = await start({ es: { type: 'elasticsearch', url: es.url, batch: { max_lines: 300, max_delay_ms: 10 } } });
    const total = 3000;
    await writeAll(helper, numberedLines(total, 100, 'faults'));
    const summaries = await endHelper(helper);
    const received = es.received();
    expect(firstArrivals(received)).toEqual(Array.from({ length: total }, (_, i) => i));
    // Retry-After: 1 is honoured: the try after the 429 came a second later.
    const answered = es.http.requests;
    const after429 = answered.findIndex((r) => r.answer === 429);
    expect(answered[after429 + 1].at - answered[after429].at).toBeGreaterThanOrEqual(950);
    const summary = summaries.get('es')!;
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0, bufferedLines: 0 });
    expect(summary.failedSends).toBeGreaterThanOrEqual(6);
    // The 2xx that was not a _bulk answer was the last failure: retried too.
    expect(summary.lastError).toBe('the answer is not a _bulk answer (not JSON): <html>a proxy page</html>');
    expectSummaryAddsUp(summary, helper.written());
  });

  it('a whole-request 400 drops that batch, counted rejected with the peer message, and is not retried', async () => {
    const es = await receiver({ label: 'bad' });
    es.http.queue({ status: 400, body: '{"error":{"type":"illegal_argument_exception","reason":"nope"},"status":400}' });
    const { helper } = await start({ es: { type: 'elasticsearch', url: es.url, batch: { max_lines: 100, max_delay_ms: 10 } } });
    await writeAll(helper, numberedLines(1000, 100, 'bad'));
    const summaries = await endHelper(helper);
    const first = es.http.requests[0];
    expect(first.answer).toBe(400);
    const refused = first.body.toString().split('\n').length / 2 - 0.5;
    const received = es.received();
    expect(received).toEqual(Array.from({ length: 1000 - refused }, (_, i) => i + refused));
    const summary = summaries.get('es')!;
    expect(summary).toMatchObject({ linesSent: 1000 - refused, linesDropped: refused, droppedBy: { rejected: { lines: refused, bytes: refused * 100 } } });
    const logged = helper.diagnostics().find((d) => d.msg.startsWith('peer rejected a batch'));
    expect(logged!.err).toMatch(/^HTTP 400: .*illegal_argument_exception/);
  });

  it('a whole-request 400 on the retry of a partly stored batch rejects only the documents still owed', async () => {
    const es = await receiver({
      label: 'part',
      answer: (doc, attempt) => (/^part \d*0 /.test(String(doc.source.message)) && attempt === 0 ? ITEM_429 : undefined),
      wholeRequest: (request) => (request === 1 ? { status: 400, body: '{"error":"no"}' } : undefined),
    });
    const { helper } = await start({ es: { type: 'elasticsearch', url: es.url, batch: { max_delay_ms: 200 } } });
    await helper.write(numberedLines(100, 50, 'part'));
    const summaries = await endHelper(helper);
    expect(es.http.requests.map((r) => r.answer)).toEqual([200, 400]);
    expect(es.received()).toEqual(Array.from({ length: 100 }, (_, i) => i).filter((n) => n % 10 !== 0));
    expect(summaries.get('es')).toMatchObject({ linesSent: 90, linesDropped: 10, droppedBy: { rejected: { lines: 10, bytes: 500 } } });
    const logged = helper.diagnostics().find((d) => d.msg.startsWith('elasticsearch refused the rest of a batch'));
    expect(logged).toMatchObject({ err: 'HTTP 400: {"error":"no"}', documents: 10 });
  });

  it('auth: basic with user and password, or an API key', async () => {
    const es = await receiver();
    const { helper } = await start({
      basic: { type: 'elasticsearch', url: es.url, auth: { user: 'elastic', password: 'pä:ss' }, batch: { max_delay_ms: 10 } },
      key: { type: 'elasticsearch', url: es.url, auth: { api_key: 'VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==' }, batch: { max_delay_ms: 10 } },
    });
    await helper.write('auth line\n');
    await endHelper(helper);
    const headers = es.http.accepted().map((r) => r.headers.authorization).sort();
    expect(headers).toEqual([
      'ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==',
      `Basic ${Buffer.from('elastic:pä:ss').toString('base64')}`,
    ]);
  });

  it('https: the certificate is verified by default (an untrusted one sends nothing); with tls.ca_file it is trusted', async () => {
    const es = await receiver({ label: 'tls' });
    const certs = makeCerts(join(makeSandbox().dir, 'certs'));
    // TLS in front of the receiver, as a proxy in front of a cluster.
    const proxy = createTlsServer({ key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert) }, (clear) => {
      const upstream = connect(Number(new URL(es.url).port), '127.0.0.1');
      clear.on('error', () => upstream.destroy());
      upstream.on('error', () => clear.destroy());
      clear.pipe(upstream).pipe(clear);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const { helper } = await start(
        {
          untrusted: { type: 'elasticsearch', url, batch: { max_delay_ms: 10 } },
          trusted: { type: 'elasticsearch', url, tls: { ca_file: certs.ca }, batch: { max_delay_ms: 10 } },
        },
        'stdout',
        1000,
      );
      await helper.write(numberedLines(50, 50, 'tls'));
      const summaries = await endHelper(helper);
      expect(es.received()).toEqual(Array.from({ length: 50 }, (_, i) => i));
      expect(summaries.get('trusted')).toMatchObject({ linesSent: 50, bufferedLines: 0 });
      const untrusted = summaries.get('untrusted')!;
      expect(untrusted).toMatchObject({ linesSent: 0, bufferedLines: 50, state: 'down' });
      expect(untrusted.lastError).toMatch(/certificate/);
    } finally {
      proxy.close();
    }
  });

  it('a receiver that never answers: the helper exits at the shutdown deadline, the lines counted buffered', async () => {
    const es = await receiver();
    es.http.queue({ status: 200, body: '{"errors":false}', delayMs: 30_000 });
    const { helper } = await start({ es: { type: 'elasticsearch', url: es.url, batch: { max_delay_ms: 10 } } }, 'stdout', 1000);
    await helper.write(numberedLines(100, 50, 'stall'));
    await waitFor(() => es.http.requests.length > 0, { what: 'the first request' });
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(5000);
    const summary = helper.diagnostics().find((d) => d.msg === 'sink summary')!;
    expect(summary).toMatchObject({ linesIn: 100, linesSent: 0, bufferedLines: 100 });
  });

  it.each([1, 2, 3])('random receiver outages (seed %i): every line arrives or is counted dropped', async (seed) => {
    const es = await receiver({ label: 'outage' });
    const plan = { seed, lines: 40_000, lineBytes: 100, label: 'outage', maxPauseMs: 20, ...OUTAGES };
    const helper = await startHelperWithSink({ type: 'elasticsearch', url: es.url, batch: { max_delay_ms: 50 } });
    const run = await streamWithOutages(helper, es, plan);
    const summary = await endAndSummarize(helper);
    expectEveryLineAccounted(summary, es.received(), run, plan.lines);
    expect(ascending(firstArrivals(es.received()))).toBe(true);
  });
});

describe('elasticsearch sink config', () => {
  const sink = (options: Record<string, unknown>): (() => unknown) => () =>
    parseConfig({ sinks: { es: { type: 'elasticsearch', ...options } } }, undefined);

  it('defaults', () => {
    const config = parseConfig({ sinks: { es: { type: 'elasticsearch' } } }, undefined);
    expect(config.sinks[0].options).toEqual({
      url: 'http://127.0.0.1:9200',
      headers: {},
      tls: { reject_unauthorized: true },
      timeout_ms: 30_000,
      compression: 'gzip',
      mode: 'data_stream',
      index: 'logs-mesos-default',
      batch: { max_lines: 1000, max_bytes: 5 << 20, max_delay_ms: 1000 },
    });
    const index = parseConfig({ sinks: { es: { type: 'elasticsearch', mode: 'index' } } }, undefined);
    expect(index.sinks[0].options).toMatchObject({ mode: 'index', index: 'mesos-logs-{date}' });
  });

  it('rendered names are made valid index names', () => {
    expect(validIndexName('Mesos-Web Shop/API#1')).toBe('mesos-web_shop_api_1');
    expect(validIndexName('_-x')).toBe('mesos-_-x');
    expect(validIndexName('.hidden')).toBe('mesos-.hidden');
    expect(validIndexName('')).toBe('mesos-');
    // 2 + 2 x 200 bytes, cut at 255 inside an é: that character goes.
    const long = validIndexName(`ab${'é'.repeat(200)}`);
    expect(Buffer.byteLength(long)).toBe(254);
    expect(long.endsWith('é')).toBe(true);
  });

  it.each([
    [{ mode: 'stream' }, 'sinks.es.mode: "stream" must be one of data_stream, index'],
    [{ index: 'Mesos-{date}' }, 'sinks.es.index: "Mesos-{date}" must be lowercase'],
    [{ index: 'logs mesos' }, 'sinks.es.index: "logs mesos" must not contain " "'],
    [{ index: '_logs' }, 'sinks.es.index: "_logs" must not start with -, _, + or .'],
    [{ index: 'logs-{task}' }, 'sinks.es.index: "logs-{task}" has an unknown placeholder {task}'],
    [{ url: 'ftp://x' }, 'sinks.es.url: "ftp://x" must be an http:// or https:// URL'],
    [{ auth: { user: 'u' } }, 'sinks.es.auth.password is required'],
    [{ auth: { api_key: 'k', user: 'u' } }, 'sinks.es.auth.user cannot be combined with api_key'],
    [{ auth: {} }, 'sinks.es.auth needs user and password (basic), bearer_token or api_key'],
    [{ auth: { api_key: 'k' }, headers: { Authorization: 'x' } }, 'sinks.es.auth conflicts with an Authorization header in headers'],
    [{ url: 'http://a:b@h', auth: { api_key: 'k' } }, 'sinks.es.auth conflicts with the user and password in url'],
    [{ batch: { max_lines: 0 } }, 'sinks.es.batch.max_lines: 0 must be a whole number from 1 to 1000000'],
    [{ pipeline: 'x' }, 'sinks.es.pipeline: "x" is not a known key'],
  ])('%j: %s', (options, message) => {
    expect(sink(options)).toThrow(message);
  });
});

describe('elasticsearch sink in the daemon', () => {
  afterAll(killDaemons);

  it('one shared sink for 6 streams: each line its own stream\'s document and index, per-item 429s resent, 400s dropped', async () => {
    const parse = (message: unknown): { stream: number; n: number } => {
      const [, stream, n] = /^s(\d+) (\d+) /.exec(String(message))!;
      return { stream: Number(stream), n: Number(n) };
    };
    const refusedLine = (n: number): boolean => n % 97 === 3;
    const es = await receiver({
      answer: (doc, attempt) => {
        const { n } = parse(doc.source.message);
        if (refusedLine(n)) return ITEM_MAPPER_400;
        return n % 7 === 0 && attempt === 0 ? ITEM_429 : undefined;
      },
    });
    const work = dirname(makeSandbox().dir);
    const config = join(work, 'config.yaml');
    // Batches larger than a stream's 500-line arrivals, so that each holds lines of several streams.
    const batch = { max_lines: 5000, max_delay_ms: 50 };
    const sink = { type: 'elasticsearch', url: es.url, mode: 'index', index: 'mesos-{executor_id}-{stream}', batch };
    // Each batch takes two requests and a backoff (its 429s): an ended stream's lines need more than the default 3 s.
    writeFileSync(config, JSON.stringify({ agent: { enrich: false }, shutdown_timeout_ms: 30_000, sinks: { es: sink } }));
    const daemon = makeDaemon({ LOG_SPLITTER_CONFIG: config });
    await daemon.start();
    const streams = [0, 1, 2].flatMap((k) => (['stdout', 'stderr'] as const).map((stream) => ({ k, stream })));
    const helpers = await Promise.all(
      streams.map(({ k, stream }) => {
        const log = join(work, `slaves/S1/frameworks/F1/executors/E${k}/runs/C${k}`, stream);
        mkdirSync(dirname(log), { recursive: true });
        return spawnLogger({ log_filename: log }, { env: daemon.shimEnv('daemon') });
      }),
    );
    const LINES = 3000;
    for (let part = 0; part < LINES / 500; part++) {
      await Promise.all(helpers.map((helper, i) => helper.write(numberedLines(500, 100, `s${i}`, part * 500))));
    }
    await Promise.all(helpers.map((helper) => helper.end()));
    for (const helper of helpers) expect((await helper.exited).code, helper.stderr()).toBe(0);
    const kept = Array.from({ length: LINES }, (_, n) => n).filter((n) => !refusedLine(n));
    await waitFor(() => es.stored.length >= kept.length * streams.length, { timeoutMs: 30_000, what: 'every document' });
    for (let i = 0; i < streams.length; i++) {
      const docs = es.stored.filter((d) => parse(d.source.message).stream === i);
      const numbers = docs.map((d) => parse(d.source.message).n);
      expect([...numbers].sort((a, b) => a - b), `stream ${i}`).toEqual(kept);
      expect(ascending(numbers.filter((n) => n % 7 !== 0)), `stream ${i}`).toBe(true);
      const { k, stream } = streams[i];
      expect(new Set(docs.map((d) => `${d.index} ${d.source.executor_id} ${d.source.stream}`))).toEqual(new Set([`mesos-e${k}-${stream} E${k} ${stream}`]));
    }
    const summaries = await waitFor(() => {
      const found = daemon.diagnostics().filter((d) => d.msg === 'sink summary');
      return found.length === streams.length && found;
    }, { what: 'a sink summary per stream' });
    // Every stream's counters add up, and together they count each refused line once. Which stream a refusal is
    // charged to is not exact: RejectedLines says how many lines of a batch were refused, not which, and the base
    // charges the batch's last streams.
    for (const summary of summaries) {
      expect(summary, JSON.stringify(summary)).toMatchObject({ linesIn: LINES, bufferedLines: 0 });
      expectSummaryAddsUp(summary);
    }
    const total = (key: string): number => summaries.reduce((sum, s) => sum + (s[key] as number), 0);
    expect({ sent: total('linesSent'), dropped: total('linesDropped') }).toEqual({
      sent: kept.length * streams.length,
      dropped: (LINES - kept.length) * streams.length,
    });
  }, 120_000);
});

