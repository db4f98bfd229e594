// `npm run bench`: pipes the corpus through a real pipe (`cat corpus | CONSUMER`) into each variant, round-robin, and
// reports median wall time, ratios, peak RSS (GNU time around the consumer only) and the helper's startup time.
//
//   BENCH_MB=32 BENCH_ROUNDS=3 npm run bench     quick run (defaults: 256 MiB, 5 rounds, 10 startup samples)
//   BENCH_ONLY=helper,s6-log npm run bench       a subset of the variants
//
// Figures are reported, never enforced: a missed target does not fail the run; a wrong output does.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WORK_DIR, corpusBytesFromEnv, ensureCorpus } from './corpus.mjs';

const ROOT = resolve(WORK_DIR, '../..');
const HELPER = join(ROOT, 'bin/mesos-logrotate-logger');
const MAX_SIZE = 10 * 1024 * 1024;
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
 *   verify    async (ctx) => throws if the output is wrong, so a broken run is never reported as fast
 * ctx = { dir (fresh, empty: the output), runDir (fresh, for anything else), corpus (path), corpusBytes,
 *         stderr (the consumer's stderr file) }.
 * A forwarder variant: the helper's command with `env: (ctx) => ({ LOG_SPLITTER_CONFIG: <a config with the sink> })`,
 * a setup that starts the receiving end, and a verify that also checks what it received.
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
];

const TARGETS = { wallVsS6: 0.6, rssMiB: 64, startupMs: 150 };

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
  const dir = join(runDir, 'out');
  mkdirSync(dir, { recursive: true });
  const ctx = { dir, runDir, corpus, corpusBytes, stderr: join(runDir, 'stderr'), rss: join(runDir, 'rss') };
  await variant.setup?.(ctx);
  try {
    const consumer = variant.command(ctx).map(quote).join(' ');
    const redirect = variant.stdout ? ` > ${quote(variant.stdout(ctx))}` : '';
    const script = `cat ${quote(corpus)} | /usr/bin/time -f %M -o ${quote(ctx.rss)} ${consumer}${redirect} 2> ${quote(ctx.stderr)}`;
    const started = process.hrtime.bigint();
    const child = spawn('/bin/sh', ['-c', script], { stdio: 'inherit', env: { ...process.env, ...variant.env?.(ctx) } });
    const { code, signal } = await waitExit(child);
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (code !== 0) {
      throw new Error(`${variant.name}: exited with ${signal ?? code}\n${readFileSync(ctx.stderr, 'utf8').slice(-2000)}`);
    }
    // GNU time writes "Command exited with ..." before the figure when the command fails; the figure is last.
    const rssKiB = Number(readFileSync(ctx.rss, 'utf8').trim().split('\n').pop());
    await variant.verify(ctx);
    return { wallMs, rssKiB };
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
  const ended = readFileSync(ctx.stderr, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .find((l) => l.msg === 'stream ended');
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

// ---- report ----------------------------------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

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
  const corpus = await ensureCorpus(corpusBytes);
  spawnSync('cat', [corpus], { stdio: 'ignore' }); // page cache: the first round must not pay for the disk read
  process.stderr.write(`${corpus}\n`);

  const runsDir = join(WORK_DIR, 'runs');
  // Startup first, while this process is small: a spawn (fork) from a parent that has grown by ~100 MB measured
  // ~20 ms slower, which is not the helper's cost. (Verification reads in fixed blocks for the same reason.)
  const startupMs = [];
  if (variants.some((v) => v.name === 'helper')) {
    for (let i = 0; i < startupSamples; i++) startupMs.push(await startupOnce(join(runsDir, 'startup')));
  }
  const results = Object.fromEntries(variants.map((v) => [v.name, { wallMs: [], rssKiB: [] }]));
  // Round 0 warms up (disk, Node's caches) and is not counted.
  for (let round = 0; round <= rounds; round++) {
    for (const variant of variants) {
      const r = await runOnce(variant, corpus, corpusBytes, join(runsDir, variant.name));
      process.stderr.write(`round ${round}${round === 0 ? ' (warm-up)' : ''} ${variant.name}: ${(r.wallMs / 1000).toFixed(2)} s, ${(r.rssKiB / 1024).toFixed(1)} MiB\n`);
      if (round > 0) {
        results[variant.name].wallMs.push(r.wallMs);
        results[variant.name].rssKiB.push(r.rssKiB);
      }
    }
  }
  rmSync(runsDir, { recursive: true, force: true });

  for (const r of Object.values(results)) {
    r.medianWallMs = median(r.wallMs);
    r.peakRssKiB = Math.max(...r.rssKiB);
  }
  const ratio = (a, b) => (results[a] && results[b] ? results[a].medianWallMs / results[b].medianWallMs : undefined);
  const fmt = (x, digits = 2) => (x === undefined ? '–' : x.toFixed(digits));
  const startupMedian = startupMs.length ? median(startupMs) : undefined;

  const lines = [
    `${mib} MiB corpus, ${rounds} rounds round-robin after a warm-up, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}`,
    '',
    '| variant | median wall (s) | × s6-log | × cat | peak RSS (MiB) | startup (ms) |',
    '|---|---:|---:|---:|---:|---:|',
    ...variants.map((v) => {
      const r = results[v.name];
      const startup = v.name === 'helper' ? fmt(startupMedian, 0) : '–';
      return `| ${v.name} | ${fmt(r.medianWallMs / 1000)} | ${fmt(ratio(v.name, 's6-log'))} | ${fmt(ratio(v.name, 'cat'))} | ${fmt(r.peakRssKiB / 1024, 1)} | ${startup} |`;
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
  console.log(lines.join('\n'));

  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    corpus: { path: corpus, bytes: corpusBytes },
    rounds,
    results,
    startupMs: { samples: startupMs, median: startupMedian },
    targets,
    table: lines.join('\n'),
  };
  writeFileSync(join(WORK_DIR, 'last.json'), `${JSON.stringify(report, null, 2)}\n`);
}

await main();
