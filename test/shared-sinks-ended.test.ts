// A shared sink outlives its streams (issue 15): lines a stream left behind when it ended are still delivered once
// the peer takes them, not thrown away at the stream's shutdown deadline. Found by a black-box audit: with a healthy
// receiver slower than the tasks, a quarter of the lines of short tasks were lost, and counted nowhere.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon, runStatus } from './helpers/daemon.js';
import { closeReceivers, ndjsonRecords, startReceiver } from './helpers/http-receiver.js';
import { makeSandbox } from './helpers/sandbox.js';
import { expectAllInOrder, writeArrivals } from './helpers/sink-run.js';
import { spawnLogger } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';

afterAll(killDaemons);
afterEach(closeReceivers);

const STREAMS = 3;
const LINES = 1000;
const OUTAGE_MS = 5000;

it('a receiver answering 503 past the shutdown timeout still gets every line of streams that ended meanwhile', async () => {
  const outageUntil = Date.now() + 60_000;
  let upAt = outageUntil;
  const peer = await startReceiver({
    linesOf: (r) => ndjsonRecords(r.body).map((record) => record.message as string),
    respond: () => (Date.now() < upAt ? { status: 503, body: 'warming up' } : { status: 200, body: '{}' }),
  });
  const work = makeSandbox().dir;
  const config = join(work, 'config.yaml');
  writeFileSync(
    config,
    JSON.stringify({ agent: { enrich: false }, shutdown_timeout_ms: 1000, sinks: { out: { type: 'http', url: `${peer.url}/in`, batch: { max_delay_ms: 0 } } } }),
  );
  const daemon = makeDaemon({ LOG_SPLITTER_CONFIG: config });
  await daemon.start();
  const inputs = Array.from({ length: STREAMS }, (_, i) => numberedLines(LINES, 60, `t${i}`));
  const helpers = await Promise.all(
    inputs.map(async (_, i) => {
      const log = join(work, `slaves/S1/frameworks/F1/executors/E${i}/runs/C${i}/stdout`);
      mkdirSync(dirname(log), { recursive: true });
      return spawnLogger({ log_filename: log }, { env: daemon.shimEnv('daemon') });
    }),
  );
  await Promise.all(helpers.map((helper, i) => writeArrivals(helper, inputs[i])));
  await Promise.all(helpers.map((helper) => helper.end()));
  // The streams end within their 1 s shutdown timeout, the peer still refusing.
  const exits = await Promise.all(helpers.map((helper) => helper.exited));
  expect(exits.map((exit) => exit.code)).toEqual(helpers.map(() => 0));
  upAt = Date.now() + OUTAGE_MS - 1000;

  const perStream = (): number[][] => {
    const numbers: number[][] = inputs.map(() => []);
    for (const line of peer.lines()) {
      const [label, n] = line.split(' ');
      numbers[Number(label.slice(1))].push(Number(n));
    }
    return numbers;
  };
  await waitFor(() => perStream().every((numbers) => new Set(numbers).size === LINES), {
    timeoutMs: 30_000,
    what: 'every line of the ended streams at the receiver',
  }).catch((err) => {
    throw new Error(`${(err as Error).message}: ${perStream().map((n) => new Set(n).size).join(' ')}`);
  });
  for (const numbers of perStream()) expectAllInOrder(numbers, LINES);
  // The sink's figures count them sent, and it holds nothing more.
  await waitFor(async () => {
    const run = await runStatus(['--json', '--socket', daemon.socket]);
    const sink = (JSON.parse(run.stdout) as { sinks: { sent_lines: number; buffered_lines: number }[] }).sinks[0];
    return sink.sent_lines === STREAMS * LINES && sink.buffered_lines === 0;
  }, { timeoutMs: 10_000, what: "the sink's counters" });
});
