// `npm run bench`: pipes the corpus through a real pipe (`cat corpus | CONSUMER`) into each variant, round-robin, and
// reports median wall time, ratios, when the input was drained (`cat` done: the consumer's throughput, without its
// shutdown), the steady rate (the input after its first eighth, so without start-up and a sink's first deliveries),
// peak RSS (GNU time around the consumer only), the helper's startup time, and what forwarders delivered.
//
//   BENCH_MB=32 BENCH_ROUNDS=3 npm run bench     quick run (defaults: 256 MiB, 5 rounds, 10 startup samples)
//   BENCH_ONLY=helper,s6-log npm run bench       a subset of the variants
//
// Figures are reported, never enforced: a missed target does not fail the run; a wrong output does.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WORK_DIR, corpusBytesFromEnv, ensureCorpus, splitCorpus } from './corpus.mjs';
import { countEntries, startJournald } from './journald.mjs';

const ROOT = resolve(WORK_DIR, '../..');
const HELPER = join(ROOT, 'bin/mesos-logrotate-logger');
const RECEIVER = join(ROOT, 'bench/tcp-receiver.mjs');
const OTLP_RECEIVER = join(ROOT, 'bench/otlp-receiver.mjs');
const MAX_SIZE = 10 * 1024 * 1024;
/** The sink buffer of the forwarder variants: the default max_bytes. */
const SINK_BUFFER_BYTES = 8 * 1024 * 1024;
/** The executor id in SANDBOX: the journald sink's EXECUTOR_ID field. */
const EXECUTOR_ID = 'web.7c9e6679-7425-40de-944b-e07fc1f90ae7';
/** The output dir, laid out as the agent's sandbox: forwarders tag lines with every id, as large as in production. */
const SANDBOX = [
  'slaves/0f5e1c2a-3b4d-4e6f-8a9b-0c1d2e3f4a5b-S3',
  'frameworks/0f5e1c2a-3b4d-4e6f-8a9b-0c1d2e3f4a5b-0001',
  `executors/${EXECUTOR_ID}`,
  'runs/5b6a9c1e-8d2f-4a3b-9c7e-1f2a3b4c5d6e',
].join('/');
/** The agent's argv for one stream, as the LogrotateContainerLogger module builds it. */
const helperArgv = (dir) => [
  '--help=false',
  `--log_filename=${dir}/stdout`,
  '--logrotate_options=rotate 10',
  '--logrotate_path=logrotate',
  '--max_size=10MB',
];

/**
 * A variant is one consumer of the corpus on its stdin. Add one by adding an entry:
 *   name      label in the table
 *   command   (ctx) => argv of the consumer; it runs as `cat corpus | /usr/bin/time ... argv [> ctx.stdout]`
 *   stdout    optional (ctx) => file the consumer's stdout is redirected to
 *   env       optional (ctx) => extra environment for the consumer
 *   setup     optional async (ctx) => before each run (write a config, start a sink, ...); teardown likewise after
 *   verify    async (ctx) => throws if the output is wrong, so a broken run is never reported as fast; may
 *             return figures to keep for the report ({ sink } for a forwarder: its "sink summary" counters)
 *   forwarder optional true: the table shows what its sink sent, dropped and still held at exit
 * ctx = { dir (fresh, empty: the output, a sandbox path), runDir (fresh, for anything else), corpus (the whole file),
 *         corpusBytes, stderr (the consumer's stderr file) }.
 * A forwarder variant: the helper's command with `env: (ctx) => ({ LOG_SPLITTER_CONFIG: <a config with the sink> })`,
 * a setup that starts the receiving end, and a verify that also checks what it received (sinkVariant below).
 */
const VARIANTS = [
  {
    name: 'helper',
    // Built-in defaults, as an agent without a config file runs it (main() warns when this machine has one).
    command: (ctx) => [HELPER, ...helperArgv(ctx.dir)],
    verify: verifyHelper,
  },
  {
    name: 's6-log',
    command: (ctx) => ['s6-log', 'n10', 's10485760', ctx.dir],
    verify: (ctx) => verifyTail(ctx, archivesThenCurrent(ctx.dir)),
  },
  {
    name: 'cat',
    command: () => ['cat'],
    stdout: (ctx) => join(ctx.dir, 'file'),
    verify: (ctx) => verifyTail(ctx, [join(ctx.dir, 'file')], { whole: true }),
  },
  // Issue #3: the helper plus one syslog sink (TCP, octet counting) to a receiver on 127.0.0.1 that reads as fast
  // as it can, and to one that accepts and never reads.
  forwarderVariant('helper+syslog', 'read'),
  forwarderVariant('helper+stalled', 'stall'),
  // Issue #14: the helper plus one journald sink (native transport) to a private systemd-journald.
  journaldVariant('helper+journald'),
  // Issue #16: the helper plus one otlp sink (protobuf, gzip) to a receiver that answers every request at once.
  otlpVariant('helper+otlp'),
];

/**
 * What a run takes in before its steady rate is timed: an eighth of the corpus, at least twice a sink's buffer (so
 * a stalled sink's buffer is full and its first deliveries are done), at most half.
 */
const warmUpBytes = (corpusBytes) => Math.floor(Math.min(Math.max(corpusBytes / 8, 2 * SINK_BUFFER_BYTES), corpusBytes / 2));

const TARGETS = { wallVsS6: 0.6, rssMiB: 64, startupMs: 150 };
const FORWARD_TARGETS = { syslogWallVsS6: 1.0, stalledThroughputVsHelper: 0.9, otlpWallVsS6: 1.2 };

// ---- running -------------------------------------------------------------------------------------------------

const quote = (s) => `'${String(s).replaceAll("'", `'\\''`)}'`;

function waitExit(child) {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** One timed run: fresh dir, `cat corpus | time consumer`, verify, clean up. */
async function runOnce(variant, corpus, corpusBytes, runDir) {
  rmSync(runDir, { recursive: true, force: true });
  const dir = join(runDir, SANDBOX);
  mkdirSync(dir, { recursive: true });
  const ctx = { dir, runDir, corpus: corpus.path, corpusBytes, stderr: join(runDir, 'stderr'), rss: join(runDir, 'rss') };
  const [warmed, drained] = [join(runDir, 'warmed'), join(runDir, 'drained')];
  await variant.setup?.(ctx);
  try {
    const consumer = variant.command(ctx).map(quote).join(' ');
    const redirect = variant.stdout ? ` > ${quote(variant.stdout(ctx))}` : '';
    // A `cat` is done when the consumer has taken all but the pipe's last 64 KiB; date(1) stamps that (~1 ms late).
    // The corpus goes in two parts, so the time between the stamps is the steady rate of the rest.
    const stamp = (file) => `date +%s%N > ${quote(file)}`;
    const producer = `{ cat ${quote(corpus.head)} && ${stamp(warmed)} && cat ${quote(corpus.tail)} && ${stamp(drained)}; }`;
    const script = `${producer} | /usr/bin/time -f %M -o ${quote(ctx.rss)} ${consumer}${redirect} 2> ${quote(ctx.stderr)}`;
    const startedEpochMs = performance.timeOrigin + performance.now();
    const started = process.hrtime.bigint();
    const child = spawn('/bin/sh', ['-c', script], { stdio: 'inherit', env: { ...process.env, ...variant.env?.(ctx) } });
    const { code, signal } = await waitExit(child);
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (code !== 0) {
      throw new Error(`${variant.name}: exited with ${signal ?? code}\n${readFileSync(ctx.stderr, 'utf8').slice(-2000)}`);
    }
    // GNU time writes "Command exited with ..." before the figure when the command fails; the figure is last.
    const rssKiB = Number(readFileSync(ctx.rss, 'utf8').trim().split('\n').pop());
    const [warmedAt, drainedAt] = [warmed, drained].map((file) => Number(readFileSync(file, 'utf8')) / 1e6);
    const figures = await variant.verify(ctx);
    return { wallMs, drainMs: drainedAt - startedEpochMs, steadyMs: drainedAt - warmedAt, rssKiB, ...figures };
  } finally {
    await variant.teardown?.(ctx);
    rmSync(runDir, { recursive: true, force: true });
  }
}

/** Spawn to first byte in the sandbox file: the line is already in the pipe, as when the task writes first. */
async function startupOnce(runDir) {
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const file = join(runDir, 'stdout');
  const started = process.hrtime.bigint();
  // Node's 'pipe' is a socketpair, not a pipe; it reads the same way, and `cat |` would add its own startup.
  const child = spawn(HELPER, helperArgv(runDir), { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = waitExit(child);
  child.stdin.write('startup probe\n');
  let ms;
  for (;;) {
    let size = 0;
    try {
      size = statSync(file).size;
    } catch {
      // not created yet
    }
    if (size > 0) {
      ms = Number(process.hrtime.bigint() - started) / 1e6;
      break;
    }
    if (child.exitCode !== null) throw new Error(`helper exited with ${child.exitCode} before writing`);
    if (Number(process.hrtime.bigint() - started) > 10e9) throw new Error('helper wrote nothing within 10 s');
    await sleep(1);
  }
  child.stdin.end();
  const { code } = await exited;
  if (code !== 0) throw new Error(`helper exited with ${code} at EOF`);
  rmSync(runDir, { recursive: true, force: true });
  return ms;
}

// ---- verification ----------------------------------------------------------------------------------------------

/** s6-log keeps `@<tai64n>.s` archives (the name sorts by time) and `current`. */
function archivesThenCurrent(dir) {
  const archives = readdirSync(dir).filter((f) => f.startsWith('@')).sort();
  return [...archives, 'current'].map((f) => join(dir, f));
}

/** The helper's pino diagnostics on stderr (JSON lines). */
const helperDiagnostics = (ctx) =>
  readFileSync(ctx.stderr, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));

/** The helper's `stdout.10` ... `stdout.1`, `stdout`; each file at most --max_size and cut after a newline. */
function verifyHelper(ctx) {
  const rotated = readdirSync(ctx.dir)
    .map((f) => /^stdout\.(\d+)$/.exec(f))
    .filter(Boolean)
    .sort((a, b) => Number(b[1]) - Number(a[1]))
    .map((m) => join(ctx.dir, m[0]));
  if (rotated.length > 10) throw new Error(`helper kept ${rotated.length} rotated files with rotate 10`);
  verifyTail(ctx, [...rotated, join(ctx.dir, 'stdout')], { maxSize: MAX_SIZE, lineCuts: rotated.length });
  // The helper's own account ("stream ended" diagnostics on stderr) must match the input exactly.
  const ended = helperDiagnostics(ctx).find((l) => l.msg === 'stream ended');
  if (ended === undefined) throw new Error('helper: no "stream ended" diagnostic on stderr');
  if (ended.bytesIn !== ctx.corpusBytes || ended.bytesWritten !== ctx.corpusBytes || ended.bytesDropped !== 0) {
    throw new Error(`helper: stream ended with ${JSON.stringify(ended)}, expected ${ctx.corpusBytes} bytes in and written`);
  }
}

/** The files, concatenated, must equal the tail of the corpus byte for byte (all of it with `whole`). */
function verifyTail(ctx, files, { whole = false, maxSize = Infinity, lineCuts = 0 } = {}) {
  const sizes = files.map((f) => statSync(f).size);
  const kept = sizes.reduce((a, b) => a + b, 0);
  if (kept === 0) throw new Error(`${files.at(-1)}: nothing written`);
  if (kept > ctx.corpusBytes || (whole && kept !== ctx.corpusBytes)) {
    throw new Error(`${files[0]}...: ${kept} bytes kept of ${ctx.corpusBytes}`);
  }
  // Block by block with two fixed buffers, so this process stays small (see startup in main()).
  const got = Buffer.allocUnsafe(1 << 20);
  const want = Buffer.allocUnsafe(1 << 20);
  const corpusFd = openSync(ctx.corpus, 'r');
  try {
    let position = ctx.corpusBytes - kept;
    files.forEach((file, i) => {
      if (sizes[i] > maxSize) throw new Error(`${file}: ${sizes[i]} bytes, over ${maxSize}`);
      const fd = openSync(file, 'r');
      try {
        for (let offset = 0; offset < sizes[i]; offset += got.length) {
          const n = readSync(fd, got, 0, Math.min(got.length, sizes[i] - offset), offset);
          readSync(corpusFd, want, 0, n, position + offset);
          if (!got.subarray(0, n).equals(want.subarray(0, n))) {
            throw new Error(`${file}: bytes differ from the corpus near offset ${position + offset}`);
          }
          if (offset + n === sizes[i] && i < lineCuts && got[n - 1] !== 0x0a) {
            throw new Error(`${file}: rotated file does not end with a newline`);
          }
        }
      } finally {
        closeSync(fd);
      }
      position += sizes[i];
    });
  } finally {
    closeSync(corpusFd);
  }
}

// ---- forwarders ------------------------------------------------------------------------------------------------

/** The helper with one syslog-TCP sink to a bench/tcp-receiver.mjs that reads (`read`) or never reads (`stall`). */
function forwarderVariant(name, mode) {
  return sinkVariant(name, {
    start: async (ctx) => {
      ctx.receiver = await startReceiver(mode);
      return { type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: ctx.receiver.port };
    },
    received: (ctx) => stopReceiver(ctx.receiver),
    // A reading receiver must have got exactly the lines sent, whole frames, on one connection (a reconnect would
    // replay frames); a stalled one must have been connected.
    check: (summary, received, fail) => {
      if (received.error !== undefined || received.cutFrames > 0) fail('the receiver got a broken frame');
      if (received.connections === 0) fail('the sink never connected');
      if (mode === 'read' && (summary.reconnects > 0 || received.connections > 1)) fail('the connection was lost');
      if (mode === 'read' && received.frames !== summary.linesSent) fail('the receiver counted other than linesSent frames');
    },
    // Verify stops the receiver; this is for a run that failed before.
    stop: (ctx) => ctx.receiver?.child.kill('SIGKILL'),
  });
}

/** Starts bench/tcp-receiver.mjs (or another receiver `script`); resolves once it listens, with its port. */
async function startReceiver(mode, script = RECEIVER) {
  const child = spawn(process.execPath, [script, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text) => (output += text));
  const exited = waitExit(child);
  const port = await new Promise((resolve, reject) => {
    void exited.then(({ code, signal }) => reject(new Error(`tcp-receiver exited with ${signal ?? code} before listening`)), reject);
    child.stdout.on('data', () => output.includes('\n') && resolve(Number(output.split('\n')[0])));
  });
  return { child, port, exited, output: () => output };
}

/** SIGTERM: a reading receiver reports once the sender's connection has closed and it has read everything. */
async function stopReceiver(receiver) {
  receiver.child.kill('SIGTERM');
  const timer = setTimeout(() => receiver.child.kill('SIGKILL'), 10_000);
  const { code, signal } = await receiver.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`tcp-receiver exited with ${signal ?? code} (still connected 10 s after the helper exited?)`);
  return JSON.parse(receiver.output().trim().split('\n').pop());
}

/**
 * The helper with one otlp sink (its defaults: protobuf, gzip) to a bench/otlp-receiver.mjs that gunzips each request,
 * counts its log records and answers 200 at once. It must have counted exactly linesSent records (nothing is retried
 * here, and no line of the corpus is cut into parts).
 */
function otlpVariant(name) {
  return sinkVariant(name, {
    start: async (ctx) => {
      ctx.receiver = await startReceiver('read', OTLP_RECEIVER);
      return { type: 'otlp', url: `http://127.0.0.1:${ctx.receiver.port}` };
    },
    received: async (ctx) => {
      const got = await stopReceiver(ctx.receiver);
      return { ...got, frames: got.records };
    },
    check: (summary, received, fail) => {
      if (received.error !== undefined) fail(`the receiver could not read a request: ${received.error}`);
      if (received.records !== summary.linesSent) fail('the receiver counted other than linesSent records');
    },
    stop: (ctx) => ctx.receiver?.child.kill('SIGKILL'),
  });
}

/** Newline count of a corpus file, read in fixed blocks (this process stays small). */
const lineCounts = new Map();
function corpusLines(corpus) {
  if (!lineCounts.has(corpus)) {
    const block = Buffer.allocUnsafe(1 << 20);
    const fd = openSync(corpus, 'r');
    let lines = 0;
    try {
      for (let n; (n = readSync(fd, block, 0, block.length)) > 0; ) {
        for (let at = block.indexOf(0x0a); at >= 0 && at < n; at = block.indexOf(0x0a, at + 1)) lines++;
      }
    } finally {
      closeSync(fd);
    }
    lineCounts.set(corpus, lines);
  }
  return lineCounts.get(corpus);
}

/**
 * The helper with one journald sink to a private journald started for the run. The journal must hold exactly
 * linesSent entries (the sink never reconnects here, so nothing is sent twice). Reports journald's CPU time and the
 * delivery rate (lines sent per second of wall time, the 3 s shutdown_timeout_ms at EOF included).
 */
function journaldVariant(name) {
  return sinkVariant(name, {
    start: async (ctx) => {
      ctx.journald = await startJournald();
      ctx.journaldCpuAtStart = ctx.journald.cpuMs();
      return { type: 'journald', socket: ctx.journald.socket };
    },
    received: async (ctx) => {
      const cpuMs = ctx.journald.cpuMs() - ctx.journaldCpuAtStart;
      return { frames: await countEntries(ctx.journald.namespace, { EXECUTOR_ID }), cpuMs };
    },
    check: (summary, received, fail) => {
      if (summary.reconnects > 0) fail('the sink reconnected');
      if (received.frames !== summary.linesSent) fail('the journal holds other than linesSent entries');
    },
    stop: (ctx) => ctx.journald?.stop(),
  });
}

/**
 * The helper with one sink (every key but its buffer its default; no agent runs here, and enrichment would only add
 * task_id) to a receiving end started for each run:
 *   start     async (ctx) => starts the receiving end (kept in ctx) and returns the sink's keys
 *   received  async (ctx) => once the helper exited, what the receiving end got: { frames, cpuMs, ... }
 *   check     (summary, received, fail) => calls fail(why) where that disagrees with the sink's account
 *   stop      (ctx) => stops the receiving end after a run that failed before verify got to it
 * Verify: the sandbox as for the helper, then the sink's account ("sink summary"): every corpus line in, and
 * in = sent + dropped + buffered at exit; then check.
 */
function sinkVariant(name, { start, received, check, stop }) {
  return {
    name,
    forwarder: true,
    command: (ctx) => [HELPER, ...helperArgv(ctx.dir)],
    env: (ctx) => ({ LOG_SPLITTER_CONFIG: ctx.config }),
    setup: async (ctx) => {
      const sink = { ...(await start(ctx)), buffer: { max_bytes: SINK_BUFFER_BYTES, when_full: 'drop_oldest' } };
      ctx.config = join(ctx.runDir, 'config.yaml');
      // JSON is YAML.
      writeFileSync(ctx.config, JSON.stringify({ agent: { enrich: false }, sinks: { fwd: sink } }));
    },
    verify: async (ctx) => {
      verifyHelper(ctx);
      const got = await received(ctx);
      const summary = helperDiagnostics(ctx).find((l) => l.msg === 'sink summary');
      const fail = (why) => {
        throw new Error(`${name}: ${why}\n  sink summary: ${JSON.stringify(summary)}\n  received: ${JSON.stringify(got)}`);
      };
      if (summary === undefined) fail('no "sink summary" diagnostic on stderr');
      const { linesIn, linesSent, linesDropped, bufferedLines } = summary;
      const lines = corpusLines(ctx.corpus);
      if (linesIn !== lines) fail(`linesIn is not the corpus's ${lines} lines`);
      if (linesIn !== linesSent + linesDropped + bufferedLines) fail('linesIn != linesSent + linesDropped + bufferedLines');
      check(summary, got, fail);
      return { sink: { linesIn, linesSent, linesDropped, bufferedLines, framesReceived: got.frames, receiverCpuMs: got.cpuMs } };
    },
    teardown: (ctx) => stop(ctx),
  };
}

// ---- report ----------------------------------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Issue #3's targets, for the forwarder variants that ran (each compared with the variant it names). */
function forwarderTargets(results, fmt) {
  const targets = [];
  const syslog = results['helper+syslog'];
  if (syslog) {
    const s6 = results['s6-log'];
    const wall = s6 && syslog.medianWallMs / s6.medianWallMs;
    const { linesIn, linesDropped, bufferedLines } = syslog.worstSink;
    const lost = linesDropped + bufferedLines;
    targets.push(
      { target: `helper+syslog wall time <= ${FORWARD_TARGETS.syslogWallVsS6.toFixed(1)} × s6-log`, value: wall, met: wall !== undefined && wall <= FORWARD_TARGETS.syslogWallVsS6, shown: wall === undefined ? 'not measured' : `${fmt(wall)} ×` },
      { target: 'helper+syslog delivers every line (no drop in any round)', value: lost, met: lost === 0, shown: `${lost} of ${linesIn} lines not sent` },
    );
  }
  const otlp = results['helper+otlp'];
  if (otlp) {
    const s6 = results['s6-log'];
    const wall = s6 && otlp.medianWallMs / s6.medianWallMs;
    const { linesIn, linesDropped, bufferedLines } = otlp.worstSink;
    const lost = linesDropped + bufferedLines;
    targets.push(
      { target: `helper+otlp wall time <= ${FORWARD_TARGETS.otlpWallVsS6.toFixed(1)} × s6-log`, value: wall, met: wall !== undefined && wall <= FORWARD_TARGETS.otlpWallVsS6, shown: wall === undefined ? 'not measured' : `${fmt(wall)} ×` },
      { target: 'helper+otlp delivers every line (no drop in any round)', value: lost, met: lost === 0, shown: `${lost} of ${linesIn} lines not sent` },
    );
  }
  const stalled = results['helper+stalled'];
  const helper = results.helper;
  if (stalled) {
    // Throughput is a rate: the steady part of the run. The whole run's ratio (start-up included) is shown too.
    const throughput = helper && helper.medianSteadyMs / stalled.medianSteadyMs;
    const wholeRun = helper && helper.medianDrainMs / stalled.medianDrainMs;
    const rssBound = helper && SINK_BUFFER_BYTES / 2 ** 20 + helper.peakRssKiB / 1024;
    const rss = stalled.peakRssKiB / 1024;
    targets.push(
      { target: `helper+stalled throughput (steady rate) >= ${FORWARD_TARGETS.stalledThroughputVsHelper} × helper's`, value: throughput, met: throughput >= FORWARD_TARGETS.stalledThroughputVsHelper, shown: throughput === undefined ? 'not measured' : `${fmt(throughput)} × (whole run, start-up included: ${fmt(wholeRun)} ×)` },
      { target: `helper+stalled peak RSS <= buffer (${SINK_BUFFER_BYTES / 2 ** 20} MiB) + helper's peak RSS`, value: rss, met: rss <= rssBound, shown: rssBound === undefined ? 'not measured' : `${fmt(rss, 1)} MiB (bound ${fmt(rssBound, 1)})` },
    );
  }
  return targets;
}

async function main() {
  const corpusBytes = corpusBytesFromEnv();
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
  const startupSamples = Number(process.env.BENCH_STARTUP ?? 10);
  const only = process.env.BENCH_ONLY?.split(',');
  const variants = VARIANTS.filter((v) => !only || only.includes(v.name));
  const mib = (corpusBytes / 2 ** 20).toFixed(0);

  if (process.env.LOG_SPLITTER_CONFIG === undefined && existsSync('/etc/mesos-log-splitter/config.yaml')) {
    process.stderr.write('warning: /etc/mesos-log-splitter/config.yaml exists: the helper runs its sinks too\n');
  }
  process.stderr.write(`corpus: ${mib} MiB ... `);
  const path = await ensureCorpus(corpusBytes);
  const warmBytes = warmUpBytes(corpusBytes);
  const [head, tail] = splitCorpus(path, warmBytes);
  const corpus = { path, head, tail };
  spawnSync('cat', [path, head, tail], { stdio: 'ignore' }); // page cache: the first round must not pay for the disk read
  process.stderr.write(`${path}\n`);

  const loadBefore = loadavg()[0];
  const runsDir = join(WORK_DIR, 'runs');
  // Startup first, while this process is small: a spawn (fork) from a parent that has grown by ~100 MB measured
  // ~20 ms slower, which is not the helper's cost. (Verification reads in fixed blocks for the same reason.)
  const startupMs = [];
  if (variants.some((v) => v.name === 'helper')) {
    for (let i = 0; i < startupSamples; i++) startupMs.push(await startupOnce(join(runsDir, 'startup')));
  }
  const results = Object.fromEntries(variants.map((v) => [v.name, { wallMs: [], drainMs: [], steadyMs: [], rssKiB: [], ...(v.forwarder && { sink: [] }) }]));
  // Round 0 warms up (disk, Node's caches) and is not counted.
  for (let round = 0; round <= rounds; round++) {
    for (const variant of variants) {
      const r = await runOnce(variant, corpus, corpusBytes, join(runsDir, variant.name));
      const sink = r.sink ? `, sink sent ${r.sink.linesSent} dropped ${r.sink.linesDropped} buffered ${r.sink.bufferedLines}` : '';
      process.stderr.write(`round ${round}${round === 0 ? ' (warm-up)' : ''} ${variant.name}: ${(r.wallMs / 1000).toFixed(2)} s (drained ${(r.drainMs / 1000).toFixed(2)} s, steady part ${(r.steadyMs / 1000).toFixed(2)} s), ${(r.rssKiB / 1024).toFixed(1)} MiB${sink}\n`);
      if (round > 0) {
        for (const key of ['wallMs', 'drainMs', 'steadyMs', 'rssKiB', 'sink']) results[variant.name][key]?.push(r[key]);
      }
    }
  }
  rmSync(runsDir, { recursive: true, force: true });
  const loadAfter = loadavg()[0];

  for (const r of Object.values(results)) {
    r.medianWallMs = median(r.wallMs);
    r.medianDrainMs = median(r.drainMs);
    r.medianSteadyMs = median(r.steadyMs);
    r.peakRssKiB = Math.max(...r.rssKiB);
    // The round that dropped most (then left most buffered): the one a forwarder answers for.
    r.worstSink = r.sink?.reduce((a, b) => (b.linesDropped + b.bufferedLines > a.linesDropped + a.bufferedLines ? b : a));
  }
  const ratio = (a, b) => (results[a] && results[b] ? results[a].medianWallMs / results[b].medianWallMs : undefined);
  const fmt = (x, digits = 2) => (x === undefined ? '–' : x.toFixed(digits));
  const startupMedian = startupMs.length ? median(startupMs) : undefined;

  const lines = [
    `${mib} MiB corpus, ${rounds} rounds round-robin after a warm-up, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, load average ${fmt(loadBefore)} before, ${fmt(loadAfter)} after`,
    '',
    `| variant | median wall (s) | input drained (s) | steady rate after ${warmBytes / 2 ** 20} MiB (MiB/s) | × s6-log | × cat | peak RSS (MiB) | startup (ms) | sink lines sent / dropped / buffered (worst round) |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...variants.map((v) => {
      const r = results[v.name];
      const startup = v.name === 'helper' ? fmt(startupMedian, 0) : '–';
      const sink = r.worstSink ? `${r.worstSink.linesSent} / ${r.worstSink.linesDropped} / ${r.worstSink.bufferedLines}` : '–';
      const rate = (corpusBytes - warmBytes) / 2 ** 20 / (r.medianSteadyMs / 1000);
      return `| ${v.name} | ${fmt(r.medianWallMs / 1000)} | ${fmt(r.medianDrainMs / 1000)} | ${fmt(rate, 0)} | ${fmt(ratio(v.name, 's6-log'))} | ${fmt(ratio(v.name, 'cat'))} | ${fmt(r.peakRssKiB / 1024, 1)} | ${startup} | ${sink} |`;
    }),
  ];
  const targets = [];
  if (results.helper) {
    const wall = ratio('helper', 's6-log');
    const rss = results.helper.peakRssKiB / 1024;
    targets.push(
      { target: `wall time <= ${TARGETS.wallVsS6} × s6-log`, value: wall, met: wall !== undefined && wall <= TARGETS.wallVsS6, shown: wall === undefined ? 'not measured' : `${fmt(wall)} ×` },
      { target: `peak RSS <= ${TARGETS.rssMiB} MB`, value: rss, met: rss <= TARGETS.rssMiB, shown: `${fmt(rss, 1)} MiB` },
      { target: `startup <= ${TARGETS.startupMs} ms`, value: startupMedian, met: startupMedian <= TARGETS.startupMs, shown: `${fmt(startupMedian, 0)} ms` },
    );
    lines.push('', '| target (issue #2) | helper | |', '|---|---:|---|', ...targets.map((t) => `| ${t.target} | ${t.shown} | ${t.met ? 'met' : 'missed'} |`));
  }
  const forwardTargets = forwarderTargets(results, fmt);
  if (forwardTargets.length > 0) {
    lines.push(
      '',
      '| target (issue #3) | figure | |',
      '|---|---:|---|',
      ...forwardTargets.map((t) => `| ${t.target} | ${t.shown} | ${t.met ? 'met' : 'missed'} |`),
    );
    if (results['helper+stalled']) {
      lines.push('', 'helper+stalled: its wall time includes the shutdown_timeout_ms (3 s) the helper gives a sink at EOF; its throughput is the steady rate.');
    }
  }
  const journald = results['helper+journald'];
  if (journald) {
    // Per round: lines journald took per second of the run, and the share of the run journald was on a CPU.
    const rates = journald.sink.map((sink, i) => sink.linesSent / (journald.wallMs[i] / 1000));
    const busy = journald.sink.map((sink, i) => sink.receiverCpuMs / journald.wallMs[i]);
    lines.push(
      '',
      `helper+journald: journald took ${fmt(median(rates), 0)} lines/s (median; lines sent per second of wall time, the 3 s shutdown_timeout_ms at EOF included), busy ${fmt(100 * median(busy), 0)}% of a CPU meanwhile. docs/sinks/journald.md says where the limit is.`,
    );
  }
  console.log(lines.join('\n'));

  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    corpus: { path: corpus, bytes: corpusBytes },
    rounds,
    results,
    loadAverage: { before: loadBefore, after: loadAfter },
    startupMs: { samples: startupMs, median: startupMedian },
    targets,
    forwardTargets,
    table: lines.join('\n'),
  };
  writeFileSync(join(WORK_DIR, 'last.json'), `${JSON.stringify(report, null, 2)}\n`);
}

await main();
