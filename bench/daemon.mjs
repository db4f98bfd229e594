// `npm run bench:daemon`: what the per-agent daemon costs and gives, side by side with the standalone helper in the
// same run (issue 15):
//   - memory: PSS of everything that serves N idle streams (daemon, workers, shims; or N standalone helpers), from
//     /proc/<pid>/smaps_rollup, for N in BENCH_DAEMON_STREAMS (default 1,100,400,1000; standalone up to 100);
//   - throughput: one 256 MiB stream (BENCH_MB), and 16 streams of a sixteenth each at once, through the daemon and
//     through standalone helpers: wall time from the first byte written to the last process exit;
//   - startup: spawn of the drop-in to the first byte in the sandbox file, daemon running (warm) and standalone.
//
//   BENCH_MB=64 BENCH_DAEMON_STREAMS=1,100 npm run bench:daemon     a quick run
//
// Figures are reported, never enforced; a sandbox that does not end with the corpus's last bytes fails the run.
import { execFileSync, spawn } from 'node:child_process';
import { constants, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WORK_DIR, corpusBytesFromEnv, ensureCorpus } from './corpus.mjs';

const ROOT = resolve(WORK_DIR, '../..');
const SHIM = join(ROOT, 'bin/mesos-logrotate-logger');
const SPLITTER = join(ROOT, 'bin/mesos-log-splitter');
const STREAM_COUNTS = (process.env.BENCH_DAEMON_STREAMS ?? '1,100,400,1000').split(',').map(Number);
/** Standalone helpers are whole Node processes: past this many the machine measures itself, not the helper. */
const MAX_STANDALONE_STREAMS = 100;
const STARTUP_SAMPLES = 10;

const helperArgv = (dir) => ['--help=false', `--log_filename=${dir}/stdout`, '--logrotate_options=rotate 10', '--logrotate_path=logrotate', '--max_size=10MB'];

/** A sandbox laid out as the agent's, under `root`. */
function sandbox(root, i) {
  const dir = join(root, `slaves/S0/frameworks/F0/executors/e${i}/runs/c${i}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function pss(pid) {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function waitFor(check, what, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const exited = (child) => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r)));

async function startDaemon(dir) {
  const socket = join(dir, 'daemon.sock');
  const stateDir = join(dir, 'state');
  const child = spawn(SPLITTER, ['daemon', '--socket', socket, '--state-dir', stateDir], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_SPLITTER_CONFIG: join(dir, 'none.yaml') } });
  let err = '';
  child.stderr.on('data', (chunk) => (err += chunk));
  await waitFor(() => err.includes('"msg":"daemon serving"') || child.exitCode !== null, 'the daemon to serve');
  if (child.exitCode !== null) throw new Error(`the daemon exited ${child.exitCode}: ${err}`);
  const workers = () => (existsSync(join(stateDir, 'workers')) ? readdirSync(join(stateDir, 'workers')).map(Number) : []);
  return { child, socket, workers, stop: async () => { child.kill('SIGTERM'); await exited(child); } };
}

/** A real kernel pipe, as the agent's pipe2() makes (Node's stdio 'pipe' is a socketpair, which /proc/PID/fd/0 cannot reopen). */
async function makePipe(root) {
  const fifo = join(root, `fifo-${Math.random().toString(36).slice(2)}`);
  execFileSync('mkfifo', ['-m', '600', fifo]);
  const [read, write] = await Promise.all([open(fifo, constants.O_RDONLY), open(fifo, constants.O_WRONLY)]);
  rmSync(fifo);
  return { readFd: read.fd, writeFd: write.fd, handles: [read, write] };
}

function dropInEnv(root, mode, daemon) {
  const env = { ...process.env, LOG_SPLITTER_MODE: mode, LOG_SPLITTER_CONFIG: join(root, 'none.yaml') };
  if (daemon) env.LOG_SPLITTER_DAEMON_SOCKET = daemon.socket;
  return env;
}

/** The drop-in on a real pipe, as the agent spawns it; the caller writes to `writeFd` and closes it for EOF. */
async function spawnDropIn(root, dir, mode, daemon) {
  const pipe = await makePipe(root);
  const child = spawn(SHIM, helperArgv(dir), { stdio: [pipe.readFd, 'ignore', 'ignore'], env: dropInEnv(root, mode, daemon) });
  await pipe.handles[0].close();
  return { child, writeFd: pipe.writeFd, end: () => pipe.handles[1].close() };
}

const served = (dir) => existsSync(join(dir, 'stdout')) && statSync(join(dir, 'stdout')).size > 0;

/** PSS of N idle streams: each got one line (so it is set up), then nothing. */
async function idleMemory(mode, n) {
  const root = mkdtempSync(join(tmpdir(), 'mls-bench-'));
  writeFileSync(join(root, 'none.yaml'), 'sinks: {}\n');
  const daemon = mode === 'daemon' ? await startDaemon(root) : undefined;
  const streams = [];
  try {
    for (let i = 0; i < n; i++) {
      const dir = sandbox(root, i);
      const { child, writeFd, end } = await spawnDropIn(root, dir, mode, daemon);
      writeSync(writeFd, `stream ${i} started\n`);
      streams.push({ dir, child, end });
      if (i % 50 === 49) await waitFor(() => streams.every((s) => served(s.dir)), `${i + 1} streams served`);
    }
    await waitFor(() => streams.every((s) => served(s.dir)), `${n} streams served`);
    await sleep(1000);
    const shims = streams.reduce((sum, s) => sum + pss(s.child.pid), 0);
    const server = daemon ? pss(daemon.child.pid) + daemon.workers().reduce((sum, pid) => sum + pss(pid), 0) : 0;
    return { n, total: shims + server, shimAverage: shims / n, server };
  } finally {
    for (const s of streams) await s.end();
    await Promise.all(streams.map((s) => exited(s.child)));
    await daemon?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Feeds each stream its file through a real pipe (`cat FILE | drop-in`), all at once; wall time to the last exit.
 * `config` replaces the sandbox-only config (a sink for the shared-sink run).
 */
async function throughput(mode, files, config = 'sinks: {}\n') {
  const root = mkdtempSync(join(tmpdir(), 'mls-bench-'));
  writeFileSync(join(root, 'none.yaml'), config);
  const daemon = mode === 'daemon' ? await startDaemon(root) : undefined;
  try {
    const dirs = files.map((_, i) => sandbox(root, i));
    const started = process.hrtime.bigint();
    const runs = dirs.map((dir, i) => {
      const argv = [SHIM, ...helperArgv(dir)].map((arg) => `'${arg}'`).join(' ');
      const child = spawn('/bin/sh', ['-c', `cat '${files[i]}' | ${argv}`], { stdio: 'ignore', env: dropInEnv(root, mode, daemon) });
      return exited(child).then(() => {
        if (child.exitCode !== 0) throw new Error(`${mode}: the drop-in exited ${child.exitCode}`);
      });
    });
    await Promise.all(runs);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    for (const [i, dir] of dirs.entries()) {
      if (!tail(files[i], 4096).equals(tail(join(dir, 'stdout'), 4096))) throw new Error(`${mode}: ${dir}/stdout does not end with the corpus's last bytes`);
    }
    return ms;
  } finally {
    await daemon?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

function tail(file, bytes) {
  const data = readFileSync(file);
  return data.subarray(Math.max(0, data.length - bytes));
}

async function startup(mode) {
  const root = mkdtempSync(join(tmpdir(), 'mls-bench-'));
  writeFileSync(join(root, 'none.yaml'), 'sinks: {}\n');
  const daemon = mode === 'daemon' ? await startDaemon(root) : undefined;
  const samples = [];
  try {
    for (let i = 0; i < STARTUP_SAMPLES + 1; i++) {
      const dir = sandbox(root, i);
      const started = process.hrtime.bigint();
      const { child, writeFd, end } = await spawnDropIn(root, dir, mode, daemon);
      writeSync(writeFd, 'first line\n');
      while (!served(dir)) await new Promise((r) => setImmediate(r));
      if (i > 0) samples.push(Number(process.hrtime.bigint() - started) / 1e6);
      await end();
      await exited(child);
    }
    return median(samples);
  } finally {
    await daemon?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** `cat FILE | s6-log n10 s10485760 DIR` for each file, all at once: the peer's wall time to the last exit. */
async function s6Streams(files) {
  const root = mkdtempSync(join(tmpdir(), 'mls-bench-'));
  try {
    const started = process.hrtime.bigint();
    await Promise.all(
      files.map((file, i) => {
        const dir = sandbox(root, i);
        return exited(spawn('/bin/sh', ['-c', `cat '${file}' | s6-log n10 s10485760 '${dir}'`], { stdio: 'ignore' }));
      }),
    );
    return Number(process.hrtime.bigint() - started) / 1e6;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * 100 streams through the daemon with one syslog sink (TCP) to bench/tcp-receiver.mjs: the sandboxes' wall time,
 * and what the one receiver got over how many connections.
 */
async function sharedSyslog(files) {
  const receiver = spawn(process.execPath, [join(ROOT, 'bench/tcp-receiver.mjs'), 'read'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  receiver.stdout.setEncoding('utf8').on('data', (text) => (output += text));
  await waitFor(() => output.includes('\n'), 'the receiver to listen');
  const port = Number(output.split('\n')[0]);
  const config = `sinks:\n  relay: {type: syslog, transport: tcp, host: 127.0.0.1, port: ${port}}\n`;
  const ms = await throughput('daemon', files, config);
  receiver.kill('SIGTERM');
  await exited(receiver);
  return { ms, received: JSON.parse(output.trim().split('\n').pop()) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (bytes) => (bytes / 1048576).toFixed(1);

async function main() {
  const corpusBytes = corpusBytesFromEnv();
  const corpus = await ensureCorpus(corpusBytes);
  const parts = await splitInto(corpus, 16);
  const load = loadavg()[0].toFixed(2);
  const results = { corpusBytes, memory: [], throughput: {}, startup: {} };

  for (const n of STREAM_COUNTS) {
    const daemon = await idleMemory('daemon', n);
    const standalone = n <= MAX_STANDALONE_STREAMS ? await idleMemory('standalone', n) : undefined;
    results.memory.push({ n, daemon, standalone });
    console.log(`idle ${n}: daemon total ${mib(daemon.total)} MiB (shim ${(daemon.shimAverage / 1024).toFixed(0)} KiB each)` + (standalone ? `, standalone ${mib(standalone.total)} MiB` : ''));
  }
  for (const mode of ['daemon', 'standalone']) {
    results.throughput[mode] = { one: await throughput(mode, [corpus]), sixteen: await throughput(mode, parts) };
    results.startup[mode] = await startup(mode);
    console.log(`${mode}: 1 stream ${results.throughput[mode].one.toFixed(0)} ms, 16 streams ${results.throughput[mode].sixteen.toFixed(0)} ms, startup ${results.startup[mode].toFixed(1)} ms`);
  }
  const hundred = await splitInto(corpus, 100);
  const lines = readFileSync(corpus).reduce((n, byte) => n + (byte === 0x0a ? 1 : 0), 0);
  results.shared = { ...(await sharedSyslog(hundred)), s6: await s6Streams(hundred), lines };
  console.log(`100 streams, one syslog sink: ${results.shared.ms.toFixed(0)} ms (s6-log ${results.shared.s6.toFixed(0)} ms), ${results.shared.received.frames} of ${lines} lines over ${results.shared.received.connections} connection(s)`);
  writeFileSync(join(WORK_DIR, 'daemon-last.json'), JSON.stringify(results, null, 2));

  const byN = Object.fromEntries(results.memory.map((m) => [m.n, m]));
  const first = results.memory[0];
  console.log(`\n${mib(corpusBytes)} MiB corpus, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, load average ${load} before\n`);
  console.log('| idle streams | daemon + workers + shims PSS (MiB) | per stream beyond the first (KiB) | shim PSS each (KiB) | standalone helpers PSS (MiB) | standalone per stream (MiB) |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const m of results.memory) {
    const per = m.n > first.n ? (m.daemon.total - first.daemon.total) / (m.n - first.n) / 1024 : undefined;
    const perStandalone = m.standalone && m.n > 1 && byN[1]?.standalone ? (m.standalone.total - byN[1].standalone.total) / (m.n - 1) / 1048576 : undefined;
    console.log(`| ${m.n} | ${mib(m.daemon.total)} | ${per === undefined ? '–' : per.toFixed(0)} | ${(m.daemon.shimAverage / 1024).toFixed(0)} | ${m.standalone ? mib(m.standalone.total) : '–'} | ${perStandalone === undefined ? '–' : perStandalone.toFixed(1)} |`);
  }
  const t = results.throughput;
  console.log('\n| run | daemon (ms) | standalone (ms) | daemon × standalone |');
  console.log('|---|---:|---:|---:|');
  console.log(`| 1 stream × ${mib(corpusBytes)} MiB | ${t.daemon.one.toFixed(0)} | ${t.standalone.one.toFixed(0)} | ${(t.daemon.one / t.standalone.one).toFixed(2)} |`);
  console.log(`| 16 streams × ${mib(corpusBytes / 16)} MiB | ${t.daemon.sixteen.toFixed(0)} | ${t.standalone.sixteen.toFixed(0)} | ${(t.daemon.sixteen / t.standalone.sixteen).toFixed(2)} |`);
  const shared = results.shared;
  console.log(`| 100 streams × ${mib(corpusBytes / 100)} MiB, one syslog sink (daemon) against 100 s6-log | ${shared.ms.toFixed(0)} | s6-log ${shared.s6.toFixed(0)} | ${(shared.ms / shared.s6).toFixed(2)} × s6-log; ${shared.received.frames} of ${shared.lines} lines over ${shared.received.connections} connection(s) |`);
  console.log(`| startup, spawn to first byte (median of ${STARTUP_SAMPLES}) | ${results.startup.daemon.toFixed(1)} | ${results.startup.standalone.toFixed(1)} | ${(results.startup.daemon / results.startup.standalone).toFixed(2)} |`);
}

/** Cuts the corpus into `n` files at line ends (cached beside it). */
async function splitInto(corpus, n) {
  const data = readFileSync(corpus);
  const files = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    let end = i === n - 1 ? data.length : Math.floor(((i + 1) * data.length) / n);
    while (end < data.length && data[end - 1] !== 0x0a) end++;
    const file = `${corpus}.part${i}of${n}`;
    if (!existsSync(file)) writeFileSync(file, data.subarray(at, end));
    files.push(file);
    at = end;
  }
  return files;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
