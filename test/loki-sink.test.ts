// End to end: the built helper, started as the agent starts it, tees a real pipe into the sandbox and a `loki` sink
// whose receiver (test/helpers/http-receiver.ts) decodes Loki's push JSON and misbehaves on purpose. Plus the
// encoder in-process, for batches that hold the lines of several streams (the daemon's shared sinks).
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { LineBatch } from '../src/lines/line-batch.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import { EntryClock } from '../src/sinks/loki/entry-clock.js';
import { PushEncoder } from '../src/sinks/loki/push-encoder.js';
import { numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon } from './helpers/daemon.js';
import { closeReceivers, faultBurst, lokiPush, startReceiver, type ReceivedRequest } from './helpers/http-receiver.js';
import { endAndSummarize, expectEveryLineAccounted, OUTAGES, startHelperWithSink, streamWithOutages } from './helpers/outage.js';
import { makeSandbox } from './helpers/sandbox.js';
import { ARRIVAL_BYTES, checkConfigFile, checkSinkConfig, expectAllInOrder, finish, startHelper, writeArrivals } from './helpers/sink-run.js';
import { ROOT, spawnLogger } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';

afterEach(closeReceivers);
afterAll(killDaemons);

const NO_CONTENT = { status: 204 };
const lokiLines = (request: ReceivedRequest): string[] => lokiPush(request.body).flatMap((s) => s.entries.map((e) => e.line));
const PATH_IDS = { agent_id: 'S1', framework_id: 'F1', executor_id: 'E1', container_id: 'C1' };

describe('loki sink', () => {
  it('pushes to /loki/api/v1/push: stream labels, structured metadata, tenant, gzip; timestamps increase per stream', async () => {
    const peer = await startReceiver({ respond: () => NO_CONTENT });
    const long = `long ${'L'.repeat(1500)}`;
    const input = Buffer.concat([
      Buffer.from('first "quoted" \\ line\r\n'),
      Buffer.from([...Buffer.from('bad '), 0xc3, 0x28, 0x0a]),
      Buffer.from(`${long}\n`),
      // Identical lines within one millisecond: Loki would keep one of them if their timestamps were equal.
      Buffer.from('same\n'.repeat(50)),
      Buffer.from('last, no newline'),
    ]);
    const { helper, logFilename } = await startHelper({
      type: 'loki',
      url: peer.url,
      tenant: 'team-a',
      static_labels: { job: 'mesos' },
      batch: { max_delay_ms: 50 },
    });
    await helper.write(input);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ type: 'loki', linesIn: 54, linesSent: 54, linesDropped: 0 });

    for (const request of peer.requests) {
      expect(request.path).toBe('/loki/api/v1/push');
      expect(request.headers['x-scope-orgid']).toBe('team-a');
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['content-encoding']).toBe('gzip');
      expect(request.wire.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    }
    const streams = peer.accepted().flatMap((r) => lokiPush(r.body));
    // The default labels without agent enrichment (no framework or task name): the node and the stream.
    for (const stream of streams) expect(stream.labels).toEqual({ job: 'mesos', hostname: hostname(), stream: 'stdout' });
    const entries = streams.flatMap((s) => s.entries);
    expect(entries.map((e) => [e.line, e.metadata])).toEqual([
      ['first "quoted" \\ line', PATH_IDS],
      ['bad \ufffd(', PATH_IDS],
      [long.slice(0, 1024), { ...PATH_IDS, partial: 'true' }],
      [long.slice(1024), PATH_IDS],
      ...Array.from({ length: 50 }, () => ['same', PATH_IDS]),
      ['last, no newline', { ...PATH_IDS, partial: 'true' }],
    ]);
    for (let i = 1; i < entries.length; i++) expect(entries[i].ns).toBeGreaterThan(entries[i - 1].ns);
    expect(Math.abs(Number(entries[0].ns / 1_000_000n) - Date.now())).toBeLessThan(60_000);
  });

  it('labels from chosen metadata; structured_metadata off sends [ts, line]; basic auth', async () => {
    const peer = await startReceiver({ respond: () => NO_CONTENT, linesOf: lokiLines });
    const input = numberedLines(200, 30, 'lab');
    const { helper, logFilename } = await startHelper({
      type: 'loki',
      url: `${peer.url}/custom/push`,
      labels: ['executor_id', 'stream', 'task_name'],
      structured_metadata: false,
      auth: { user: '1234', password: 'glc_x' },
    });
    await writeArrivals(helper, input);
    await finish(helper, logFilename, input);
    expect(peer.lines()).toEqual(Array.from({ length: 200 }, (_, i) => `lab ${i} `.padEnd(29, '.')));
    for (const request of peer.requests) {
      expect(request.path).toBe('/custom/push');
      expect(request.headers.authorization).toBe(`Basic ${Buffer.from('1234:glc_x').toString('base64')}`);
      expect(request.headers['x-scope-orgid']).toBeUndefined();
      // No task name without enrichment: that label is left out, not sent empty.
      for (const stream of lokiPush(request.body)) {
        expect(stream.labels).toEqual({ executor_id: 'E1', stream: 'stdout' });
        for (const entry of stream.entries) expect(entry.metadata).toBeUndefined();
      }
    }
  });

  it('through 500s, 429s, resets and slow answers: every line at least once, in order; a resent body is identical', async () => {
    const total = 20_000;
    const peer = await startReceiver({ respond: () => NO_CONTENT, linesOf: lokiLines, label: 'k' });
    peer.queue(...faultBurst({ timeoutMs: 2000 }), ...faultBurst());
    const input = numberedLines(total, 100, 'k');
    const { helper, logFilename } = await startHelper(
      { type: 'loki', url: peer.url, timeout_ms: 2000, batch: { max_lines: 700, max_delay_ms: 20 } },
      20_000,
    );
    await writeArrivals(helper, input);
    await waitFor(() => new Set(peer.received()).size >= total, { timeoutMs: 60_000, intervalMs: 50, what: 'every line' });
    const summary = await finish(helper, logFilename, input);
    expectAllInOrder(peer.received(), total);
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0, bufferedLines: 0 });
    expect(summary.failedSends).toBeGreaterThanOrEqual(15);
    // Loki drops an entry equal to one it has (stream, timestamp, line): a batch resent after a lost answer is.
    const lost = peer.requests.filter((r) => r.answer === 'reset' && r.body.length > 0);
    expect(lost.length).toBeGreaterThanOrEqual(3);
    for (const request of lost) expect(peer.requests[peer.requests.indexOf(request) + 1].body.equals(request.body)).toBe(true);
    // Timestamps increase over the first arrivals of every line, across batches.
    const firsts = new Map<number, bigint>();
    for (const request of peer.accepted()) {
      for (const entry of lokiPush(request.body)[0].entries) {
        const n = Number(/^k (\d+) /.exec(entry.line)![1]);
        if (!firsts.has(n)) firsts.set(n, entry.ns);
      }
    }
    for (let n = 1; n < total; n++) expect(firsts.get(n)! > firsts.get(n - 1)!).toBe(true);
  }, 120_000);

  it('a 400 push is rejected: counted, logged with Loki\'s message, never resent', async () => {
    const peer = await startReceiver({
      linesOf: lokiLines,
      respond: (r) =>
        r.body.includes('poison')
          ? { status: 400, body: 'entry for stream \'{job="x"}\' has timestamp too old' }
          : NO_CONTENT,
    });
    const { helper, logFilename } = await startHelper({ type: 'loki', url: peer.url, batch: { max_delay_ms: 10 } });
    const before = numberedLines(100, 50, 'ok');
    const poison = numberedLines(40, 50, 'poison');
    const after = numberedLines(60, 50, 'ok', 100);
    await helper.write(before);
    await waitFor(() => peer.lines().length >= 100, { timeoutMs: 5000, what: 'the first lines' });
    await helper.write(poison);
    await waitFor(() => peer.requests.some((r) => r.answer === 400), { what: 'the rejection' });
    await helper.write(after);
    await waitFor(() => peer.lines().length >= 160, { what: 'the later lines' });
    const summary = await finish(helper, logFilename, Buffer.concat([before, poison, after]));
    expect(peer.requests.filter((r) => r.body.includes('poison'))).toHaveLength(1);
    expect(peer.lines()).toEqual(Array.from({ length: 160 }, (_, i) => `ok ${i} `.padEnd(49, '.')));
    expect(summary).toMatchObject({ linesIn: 200, linesSent: 160, linesDropped: 40, droppedBy: { rejected: { lines: 40, bytes: 2000 } } });
    expect(helper.diagnostics().find((d) => d.status === 400)!.err).toContain('has timestamp too old');
  });

  it('a 429 (Loki\'s rate limit) waits for Retry-After, then the same push goes again', async () => {
    const peer = await startReceiver({ respond: () => NO_CONTENT });
    peer.queue({ status: 429, headers: { 'retry-after': '1' }, body: 'Ingestion rate limit exceeded' });
    const input = numberedLines(50, 40, 'ra');
    const { helper, logFilename } = await startHelper({ type: 'loki', url: peer.url });
    await helper.write(input);
    await waitFor(() => peer.accepted().length > 0, { what: 'the push after the wait' });
    await finish(helper, logFilename, input);
    const [throttled, retried] = peer.requests;
    expect([throttled.answer, retried.answer]).toEqual([429, 204]);
    expect(retried.at - throttled.at).toBeGreaterThanOrEqual(990);
    expect(retried.body.equals(throttled.body)).toBe(true);
  });
});

describe('loki sink through random receiver outages', () => {
  it.each([1, 2, 3])('seed %i: every line arrives or is counted dropped, first arrivals in order', async (seed) => {
    const peer = await startReceiver({ respond: () => NO_CONTENT, linesOf: lokiLines, label: 'outage' });
    // 4 MB: inside the 8 MB buffer, so no outage may cost a line.
    const plan = { seed, lines: 40_000, lineBytes: 100, label: 'outage', maxPauseMs: 20, ...OUTAGES };
    const helper = await startHelperWithSink({ type: 'loki', url: peer.url });
    const run = await streamWithOutages(helper, peer, plan);
    const summary = await endAndSummarize(helper);
    expectEveryLineAccounted(summary, peer.received(), run, plan.lines);
    expectAllInOrder(peer.received(), plan.lines);
  }, 120_000);
});

describe('loki sink shared by the daemon', () => {
  it('stdout and stderr of 4 tasks into one sink: each line once, in order, with its own ids; shared Loki streams keep increasing timestamps', async () => {
    const peer = await startReceiver({ respond: () => NO_CONTENT });
    const work = makeSandbox().dir;
    const configFile = join(work, 'config.yaml');
    const sink = { type: 'loki', url: peer.url, batch: { max_delay_ms: 50 } };
    writeFileSync(configFile, JSON.stringify({ agent: { enrich: false }, shutdown_timeout_ms: 10_000, sinks: { loki: sink } }));
    const daemon = makeDaemon({ LOG_SPLITTER_CONFIG: configFile });
    await daemon.start();
    const LINES = 3000;
    const WIDTH = 120;
    const streams = [0, 1, 2, 3].flatMap((t) => (['stdout', 'stderr'] as const).map((stream) => ({ t, stream, label: `t${t}${stream}` })));
    const helpers = await Promise.all(
      streams.map(({ t, stream }) => {
        const logFilename = join(work, `slaves/S1/frameworks/F1/executors/E${t}/runs/C${t}`, stream);
        mkdirSync(dirname(logFilename), { recursive: true });
        return spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: daemon.shimEnv('daemon') });
      }),
    );
    const inputs = streams.map(({ label }) => numberedLines(LINES, WIDTH, label));
    for (let at = 0; at < LINES * WIDTH; at += ARRIVAL_BYTES) {
      await Promise.all(helpers.map((helper, k) => helper.write(inputs[k].subarray(at, at + ARRIVAL_BYTES))));
    }
    await Promise.all(helpers.map((helper) => helper.end()));
    for (const helper of helpers) expect((await helper.exited).code, helper.stderr()).toBe(0);
    const entries = () => peer.accepted().flatMap((r) => lokiPush(r.body).flatMap((s) => s.entries.map((e) => ({ ...e, labels: s.labels }))));
    await waitFor(() => entries().length >= streams.length * LINES, { timeoutMs: 30_000, intervalMs: 500, what: 'every line' });
    const all = entries();
    for (const { t, stream, label } of streams) {
      const mine = all.filter((e) => e.line.startsWith(`${label} `));
      expect(mine.map((e) => Number(e.line.split(' ')[1])), label).toEqual(Array.from({ length: LINES }, (_, i) => i));
      const wrong = mine.filter((e) => e.labels.stream !== stream || e.metadata?.executor_id !== `E${t}` || e.metadata?.container_id !== `C${t}`);
      expect(wrong, label).toEqual([]);
    }
    // Without enrichment the default labels are {hostname, stream}: the tasks share two Loki streams, whose
    // timestamps still increase strictly, push after push.
    const byStream = new Map<string, bigint[]>();
    for (const e of all) {
      const key = JSON.stringify(e.labels);
      if (!byStream.has(key)) byStream.set(key, []);
      byStream.get(key)!.push(e.ns);
    }
    expect(byStream.size).toBe(2);
    for (const stamps of byStream.values()) expect(stamps.findIndex((ns, i) => i > 0 && ns <= stamps[i - 1])).toBe(-1);
  }, 120_000);
});

describe('loki push encoder (in-process)', () => {
  const meta = (executor: string, stream: 'stdout' | 'stderr', extra: Partial<StreamMetadata> = {}): StreamMetadata => ({
    stream,
    hostname: 'node-1',
    sandbox: `/w/${executor}`,
    executor_id: executor,
    task_id: `${executor}.task`,
    executor_labels: {},
    task_labels: {},
    ...extra,
  });

  /** A batch of `lines`, each with its writer and time, as the daemon's shared sink takes them. */
  function batchOf(lines: [string, StreamMetadata, number][]): LineBatch {
    const data = Buffer.from(lines.map(([text]) => `${text}\n`).join(''));
    const starts = new Uint32Array(lines.length);
    const stops = new Uint32Array(lines.length);
    let at = 0;
    lines.forEach(([text], i) => {
      starts[i] = at;
      stops[i] = at + Buffer.byteLength(text);
      at = stops[i] + 1;
    });
    return new LineBatch(data, starts, stops, new Uint8Array(lines.length), Float64Array.from(lines.map(([, , t]) => t)), lines.map(([, m]) => m), true, lines.length);
  }

  it('groups a batch of several writers by label set, in arrival order per stream, with each writer\'s metadata', () => {
    const a = meta('A', 'stdout', { task_name: 'web', task_labels: { 'app.kubernetes/name': 'web' } });
    const b = meta('B', 'stdout', { task_name: 'web' });
    const c = meta('C', 'stderr', { task_name: 'db' });
    const encoder = new PushEncoder({
      labels: [{ name: 'task_name', field: 'task_name' }, { name: 'stream', field: 'stream' }],
      staticLabels: { job: 'mesos' },
      structuredMetadata: true,
    });
    const t = 1_700_000_000_000;
    const body = encoder.encode(batchOf([['a1', a, t], ['c1', c, t], ['b1', b, t], ['a2', a, t + 1], ['c2', c, t - 5]]));
    const streams = lokiPush(body);
    expect(streams.map((s) => s.labels)).toEqual([
      { job: 'mesos', task_name: 'web', stream: 'stdout' },
      { job: 'mesos', task_name: 'db', stream: 'stderr' },
    ]);
    expect(streams[0].entries.map((e) => [e.line, e.metadata!.executor_id, String(e.ns)])).toEqual([
      ['a1', 'A', '1700000000000000000'],
      ['b1', 'B', '1700000000000000001'],
      ['a2', 'A', '1700000000001000000'],
    ]);
    // A line that arrived earlier than the stream's last entry (another writer's clock) still comes after it.
    expect(streams[1].entries.map((e) => [e.line, String(e.ns)])).toEqual([
      ['c1', '1700000000000000000'],
      ['c2', '1700000000000000001'],
    ]);
    expect(streams[0].entries[0].metadata).toEqual({
      hostname: 'node-1',
      executor_id: 'A',
      task_id: 'A.task',
      task_label_app_kubernetes_name: 'web',
    });
  });

  it('EntryClock: strictly increasing per stream, carrying into the next millisecond after 10^6 entries', () => {
    const clock = new EntryClock();
    let last = 0n;
    let notIncreasing = 0;
    for (let i = 0; i < 1_000_001; i++) {
      const ns = BigInt(clock.stamp('s', 5000));
      if (ns <= last) notIncreasing++;
      last = ns;
    }
    expect(notIncreasing).toBe(0);
    expect(String(last)).toBe('5001000000');
    expect(clock.stamp('other', 5000)).toBe('5000000000');
    expect(clock.stamp('s', 9000)).toBe('9000000000');
  });
});

describe('loki sink config (check-config)', () => {
  it('config/loki.yaml, the commented example, is valid', () => {
    const { code, stdout, stderr } = checkConfigFile(join(ROOT, 'config', 'loki.yaml'));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(Object.keys(parseYaml(stdout).sinks)).toEqual(['loki']);
  });

  it('prints the defaults', () => {
    const { code, stdout, stderr } = checkSinkConfig({ type: 'loki' });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(parseYaml(stdout).sinks.out).toMatchObject({
      type: 'loki',
      url: 'http://127.0.0.1:3100',
      compression: 'gzip',
      labels: ['hostname', 'framework_name', 'task_name', 'stream'],
      static_labels: {},
      structured_metadata: true,
      batch: { max_lines: 1000, max_bytes: 1048576, max_delay_ms: 1000 },
    });
  });

  it.each([
    [{ labels: ['pod'] }, 'sinks.out.labels: "pod" is not a metadata field; known: stream, hostname'],
    [{ labels: ['task_id'] }, 'sinks.out.labels: ["task_id"] can leave a stream without labels'],
    [{ static_labels: { 'bad-name': 'x' } }, 'sinks.out.static_labels.bad-name: "bad-name" is not a Loki label name'],
    [{ static_labels: { stream: 'x' } }, 'sinks.out.static_labels.stream: "x" is also a label taken from metadata'],
    [{ static_labels: { job: '' } }, 'sinks.out.static_labels.job: "" must not be empty'],
    [{ tenant: 'a', headers: { 'X-Scope-OrgID': 'b' } }, 'sinks.out.tenant: "a" conflicts with an X-Scope-OrgID header'],
    [{ structured_metadata: 'yes' }, 'sinks.out.structured_metadata: "yes" must be true or false'],
    [{ auth: { bearer_token: 'x', password: 'y' } }, 'sinks.out.auth.password cannot be combined with bearer_token'],
    [{ url: 'loki:3100' }, 'sinks.out.url: "loki:3100" must be an http:// or https:// URL'],
  ])('rejects %j: names the key and value', (keys, message) => {
    const { code, stderr } = checkSinkConfig({ type: 'loki', ...keys });
    expect(code).toBe(1);
    expect(stderr).toContain(message);
  });
});
