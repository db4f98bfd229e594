// End to end: the built helper, started as the agent starts it, tees a real pipe into the sandbox and an `http` sink
// whose receiver (test/helpers/http-receiver.ts) decodes what it gets and misbehaves on purpose.
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { numberedLines } from './helpers/data.js';
import { closeReceivers, faultBurst, hecEvents, jsonArrayRecords, ndjsonRecords, startReceiver, type ReceivedRequest } from './helpers/http-receiver.js';
import { endAndSummarize, expectEveryLineAccounted, OUTAGES, startHelperWithSink, streamWithOutages } from './helpers/outage.js';
import { checkConfigFile, checkSinkConfig, expectAllInOrder, finish, startHelper, writeArrivals } from './helpers/sink-run.js';
import { ROOT } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';

afterEach(closeReceivers);

const IDS = { stream: 'stdout', hostname: hostname(), agent_id: 'S1', framework_id: 'F1', executor_id: 'E1', container_id: 'C1' };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const oddInput = (tag: string): Buffer =>
  Buffer.concat([
    Buffer.from(`${tag} plain\n`),
    Buffer.from(`${tag} crlf "quoted" \\ tab\t\r\n`),
    Buffer.from([...Buffer.from(`${tag} bad `), 0xc3, 0x28, 0x0a]),
    Buffer.from(`${tag} long ${'L'.repeat(1500)}\n`),
    Buffer.from(`${tag} last, no newline`),
  ]);

const oddMessages = (tag: string): [string, boolean][] => {
  const long = `${tag} long ${'L'.repeat(1500)}`;
  return [
    [`${tag} plain`, false],
    [`${tag} crlf "quoted" \\ tab\t`, false],
    [`${tag} bad \ufffd(`, false],
    [long.slice(0, 1024), true],
    [long.slice(1024), false],
    [`${tag} last, no newline`, true],
  ];
};

describe('http sink', () => {
  it('ndjson: one record per line with time, message, stream and ids; gzip on the wire; basic auth and headers', async () => {
    const peer = await startReceiver({ linesOf: (r) => ndjsonRecords(r.body).map((rec) => rec.message as string) });
    const input = oddInput('nd');
    const { helper, logFilename } = await startHelper({
      type: 'http',
      url: `${peer.url}/ingest?x=1`,
      auth: { user: 'ops', password: 'se:cret' },
      headers: { 'X-Extra': 'yes' },
      batch: { max_delay_ms: 50 },
    });
    await helper.write(input);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ type: 'http', linesIn: 5, linesSent: 5, linesDropped: 0, bufferedLines: 0 });

    const records = peer.accepted().flatMap((r) => ndjsonRecords(r.body));
    expect(records.map((r) => [r.message, r.partial === true])).toEqual(oddMessages('nd'));
    for (const record of records) {
      const { time, message: _message, partial: _partial, ...rest } = record;
      expect(time).toMatch(ISO);
      expect(Math.abs(Date.parse(time as string) - Date.now())).toBeLessThan(60_000);
      expect(rest).toEqual(IDS);
    }
    for (const request of peer.requests) {
      expect(request.method).toBe('POST');
      expect(request.path).toBe('/ingest?x=1');
      expect(request.headers['content-type']).toBe('application/x-ndjson');
      expect(request.headers['content-encoding']).toBe('gzip');
      expect(request.wire.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      expect(request.headers.authorization).toBe(`Basic ${Buffer.from('ops:se:cret').toString('base64')}`);
      expect(request.headers['x-extra']).toBe('yes');
    }
  });

  it('json_array without compression, bearer token; basic auth from the url', async () => {
    const peer = await startReceiver();
    const input = numberedLines(300, 40, 'arr');
    const { helper, logFilename } = await startHelper({
      type: 'http',
      url: `${peer.url}/a`,
      format: 'json_array',
      compression: 'none',
      auth: { bearer_token: 't0k3n' },
    });
    await writeArrivals(helper, input);
    await finish(helper, logFilename, input);
    const records = peer.accepted().flatMap((r) => jsonArrayRecords(r.body));
    expect(records.map((r) => r.message)).toEqual(Array.from({ length: 300 }, (_, i) => `arr ${i} `.padEnd(39, '.')));
    for (const request of peer.requests) {
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['content-encoding']).toBeUndefined();
      expect(request.headers.authorization).toBe('Bearer t0k3n');
    }

    const second = await startReceiver();
    const again = await startHelper({ type: 'http', url: second.url.replace('//', '//ops:p%40ss@') });
    await again.helper.write('one\n');
    await finish(again.helper, again.logFilename, Buffer.from('one\n'));
    expect(second.requests[0].headers.authorization).toBe(`Basic ${Buffer.from('ops:p@ss').toString('base64')}`);
  });

  it('through 500s, 429s, resets and slow answers: every line at least once, in order, counters add up', async () => {
    const total = 20_000;
    const peer = await startReceiver({ linesOf: (r) => ndjsonRecords(r.body).map((rec) => rec.message as string), label: 'f' });
    peer.queue(...faultBurst({ timeoutMs: 2000 }), ...faultBurst(), ...faultBurst());
    const input = numberedLines(total, 100, 'f');
    const { helper, logFilename } = await startHelper(
      { type: 'http', url: peer.url, timeout_ms: 2000, batch: { max_lines: 700, max_delay_ms: 20 } },
      20_000,
    );
    await writeArrivals(helper, input);
    await waitFor(() => new Set(peer.received()).size >= total, { timeoutMs: 60_000, intervalMs: 50, what: 'every line' });
    const summary = await finish(helper, logFilename, input);
    expectAllInOrder(peer.received(), total);
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0, bufferedLines: 0 });
    // Each fault failed a send that was retried: 8 in the first burst (with the timeout), 7 in each other.
    const answers = peer.requests.map((r) => r.answer);
    for (const [answer, count] of [[500, 3], [503, 3], [502, 3], [429, 6], ['reset', 7]] as const) {
      expect(answers.filter((a) => a === answer)).toHaveLength(count);
    }
    // (A connection the loaded machine drops on its own is one more.)
    expect(summary.failedSends).toBeGreaterThanOrEqual(22);
    // The batch whose answer was lost after its body arrived came again, identical.
    const lost = peer.requests.filter((r) => r.answer === 'reset' && r.body.length > 0);
    for (const request of lost) {
      const next = peer.requests[peer.requests.indexOf(request) + 1];
      expect(next.body.equals(request.body)).toBe(true);
    }
  }, 120_000);

  it('honours Retry-After: the next try waits as long as the peer asked', async () => {
    const peer = await startReceiver();
    peer.queue({ status: 429, headers: { 'retry-after': '2' }, body: 'slow down' }, { status: 503, headers: { 'retry-after': '1' } });
    const input = numberedLines(50, 40, 'ra');
    const { helper, logFilename } = await startHelper({ type: 'http', url: peer.url });
    await helper.write(input);
    await waitFor(() => peer.accepted().length > 0, { timeoutMs: 10_000, what: 'the batch after the waits' });
    await finish(helper, logFilename, input);
    const [throttled, unavailable, accepted] = peer.requests;
    expect([throttled.answer, unavailable.answer, accepted.answer]).toEqual([429, 503, 200]);
    // `at` is when a body had arrived: the answer went out right after, and the retry came no sooner than asked.
    expect(unavailable.at - throttled.at).toBeGreaterThanOrEqual(1990);
    expect(accepted.at - unavailable.at).toBeGreaterThanOrEqual(990);
  });

  it('a 4xx batch is rejected: counted, logged with the peer message, never sent again; later lines go on', async () => {
    const peer = await startReceiver({
      linesOf: (r) => ndjsonRecords(r.body).map((rec) => rec.message as string),
      respond: (r) =>
        r.body.includes('poison') ? { status: 400, body: '{"error":"field [message] is poison"}' } : { status: 200, body: '{}' },
    });
    const { helper, logFilename } = await startHelper({ type: 'http', url: peer.url, batch: { max_delay_ms: 10 } });
    const before = numberedLines(100, 50, 'ok');
    const poison = numberedLines(40, 50, 'poison');
    const after = numberedLines(60, 50, 'ok', 100);
    await helper.write(before);
    await waitFor(() => peer.lines().length >= 100, { what: 'the first lines' });
    await helper.write(poison);
    await waitFor(() => peer.requests.some((r) => r.answer === 400), { what: 'the rejection' });
    await helper.write(after);
    await waitFor(() => peer.lines().length >= 160, { what: 'the later lines' });
    const summary = await finish(helper, logFilename, Buffer.concat([before, poison, after]));
    expect(peer.requests.filter((r) => r.body.includes('poison'))).toHaveLength(1);
    expect(peer.lines()).toEqual([...Array.from({ length: 160 }, (_, i) => `ok ${i} `.padEnd(49, '.'))]);
    expect(summary).toMatchObject({
      linesIn: 200,
      linesSent: 160,
      linesDropped: 40,
      droppedBy: { rejected: { lines: 40, bytes: 2000 } },
      failedSends: 0,
      state: 'up',
    });
    const logged = helper.diagnostics().find((d) => d.status === 400);
    expect(logged).toMatchObject({ lines: 40 });
    expect(logged!.err).toContain('field [message] is poison');
  });

  it('splunk_hec: events at /services/collector/event with the Splunk token, time, host, source, index and fields', async () => {
    const peer = await startReceiver({ respond: () => ({ status: 200, body: '{"text":"Success","code":0}' }) });
    const input = oddInput('hec');
    const { helper, logFilename } = await startHelper({
      type: 'http',
      url: peer.url,
      format: 'splunk_hec',
      hec: { token: '11111111-2222-3333-4444-555555555555', index: 'mesos_{framework_id}', sourcetype: 'mesos:{stream}' },
      batch: { max_delay_ms: 50 },
    });
    await helper.write(input);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesSent: 5, linesDropped: 0 });
    for (const request of peer.requests) {
      expect(request.path).toBe('/services/collector/event');
      expect(request.headers.authorization).toBe('Splunk 11111111-2222-3333-4444-555555555555');
      expect(request.headers['content-encoding']).toBe('gzip');
      // Epoch seconds with milliseconds, as HEC takes them.
      expect(request.body.toString()).toMatch(/^\{"time":\d{10}\.\d{3},/);
    }
    const events = peer.accepted().flatMap((r: ReceivedRequest) => hecEvents(r.body));
    expect(events.map((e) => [e.event, e.fields?.partial === 'true'])).toEqual(oddMessages('hec'));
    for (const { time, event: _event, fields, ...rest } of events) {
      expect(Math.abs(time! * 1000 - Date.now())).toBeLessThan(60_000);
      expect(rest).toEqual({ host: hostname(), source: join(dirname(logFilename), 'stdout'), sourcetype: 'mesos:stdout', index: 'mesos_F1' });
      const { partial: _partial, ...ids } = fields!;
      expect(ids).toEqual(IDS);
    }
  });

  it('splunk_hec: a refused token (403) rejects each batch, logged with the peer text, never retried', async () => {
    const peer = await startReceiver({ respond: () => ({ status: 403, body: '{"text":"Invalid token","code":4}' }) });
    const { helper, logFilename } = await startHelper({ type: 'http', url: peer.url, format: 'splunk_hec', hec: { token: 'wrong' } });
    const input = numberedLines(30, 40, 'tok');
    await helper.write(input);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesSent: 0, linesDropped: 30, droppedBy: { rejected: { lines: 30 } }, failedSends: 0 });
    expect(new Set(peer.requests.map((r) => r.body.toString())).size).toBe(peer.requests.length);
    expect(helper.diagnostics().find((d) => d.status === 403)!.err).toContain('Invalid token');
  });
});

describe('http sink through random receiver outages', () => {
  it.each([1, 2, 3])('seed %i: every line arrives or is counted dropped, first arrivals in order', async (seed) => {
    const peer = await startReceiver({ linesOf: (r) => ndjsonRecords(r.body).map((rec) => rec.message as string), label: 'outage' });
    // 4 MB: inside the 8 MB buffer, so no outage may cost a line.
    const plan = { seed, lines: 40_000, lineBytes: 100, label: 'outage', maxPauseMs: 20, ...OUTAGES };
    const helper = await startHelperWithSink({ type: 'http', url: peer.url });
    const run = await streamWithOutages(helper, peer, plan);
    const summary = await endAndSummarize(helper);
    expectEveryLineAccounted(summary, peer.received(), run, plan.lines);
    expectAllInOrder(peer.received(), plan.lines);
  }, 120_000);
});

describe('http sink config (check-config)', () => {
  it('config/http.yaml, the commented example, is valid', () => {
    const { code, stdout, stderr } = checkConfigFile(join(ROOT, 'config', 'http.yaml'));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(Object.keys(parseYaml(stdout).sinks)).toEqual(['collector', 'splunk']);
  });

  it('prints the defaults', () => {
    const { code, stdout, stderr } = checkSinkConfig({ type: 'http', url: 'https://logs.example.com/in' });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(parseYaml(stdout).sinks.out).toMatchObject({
      type: 'http',
      url: 'https://logs.example.com/in',
      format: 'ndjson',
      compression: 'gzip',
      timeout_ms: 30_000,
      tls: { reject_unauthorized: true },
      batch: { max_lines: 1000, max_bytes: 1048576, max_delay_ms: 1000 },
    });
  });

  it.each([
    [{ type: 'http' }, 'sinks.out.url is required'],
    [{ type: 'http', url: 'ftp://x/' }, 'sinks.out.url: "ftp://x/" must be an http:// or https:// URL'],
    [{ type: 'http', url: 'http://x/', format: 'xml' }, 'sinks.out.format: "xml" must be one of ndjson, json_array, splunk_hec'],
    [{ type: 'http', url: 'http://x/', auth: { user: 'a' } }, 'sinks.out.auth.password is required'],
    [{ type: 'http', url: 'http://x/', auth: { user: 'a', bearer_token: 'b' } }, 'sinks.out.auth.user cannot be combined with bearer_token'],
    [{ type: 'http', url: 'http://x/', auth: { token: 'b' } }, 'sinks.out.auth needs user and password (basic) or bearer_token'],
    [{ type: 'http', url: 'http://u:p@x/', auth: { bearer_token: 'b' } }, 'sinks.out.auth conflicts with the user and password in url'],
    [{ type: 'http', url: 'http://x/', headers: { Authorization: 'x' }, auth: { bearer_token: 'b' } }, 'sinks.out.auth conflicts with an Authorization header'],
    [{ type: 'http', url: 'http://x/', hec: { token: 't' } }, 'sinks.out.hec applies only to format splunk_hec'],
    [{ type: 'http', url: 'http://x/', format: 'splunk_hec' }, 'sinks.out.hec.token is required'],
    [{ type: 'http', url: 'http://x/', format: 'splunk_hec', hec: { token: 't' }, auth: { bearer_token: 'b' } }, 'sinks.out.auth does not apply to format splunk_hec'],
    [{ type: 'http', url: 'http://x/', format: 'splunk_hec', hec: { token: 't', index: 'i-{date}' } }, 'sinks.out.hec.index: "i-{date}" cannot use {date}'],
    [{ type: 'http', url: 'http://x/', format: 'splunk_hec', hec: { token: 't', source: '{pod}' } }, 'sinks.out.hec.source: "{pod}" has an unknown placeholder {pod}'],
    [{ type: 'http', url: 'http://x/', batch: { max_lines: 0 } }, 'sinks.out.batch.max_lines: 0 must be a whole number from 1 to 1000000'],
    [{ type: 'http', url: 'http://x/', tls: { ca_file: '/etc/hostname' } }, 'sinks.out.tls: {"ca_file":"/etc/hostname"} applies only to an https:// url'],
  ])('rejects %j: names the key and value', (sink, message) => {
    const { code, stderr } = checkSinkConfig(sink);
    expect(code).toBe(1);
    expect(stderr).toContain(message);
  });
});
