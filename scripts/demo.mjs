// `npm run demo`: the helper on built-in defaults, as the agent runs it. Generates ~40 MiB of mixed task output
// (bench/corpus.mjs), pipes it through a real pipe into bin/mesos-logrotate-logger with the agent's argv
// (max_size 10MB, `rotate 3`) into a fresh sandbox, then shows the files, checks that the kept files are exactly
// the tail of the input, and prints the helper's own diagnostics (what the agent's log would get).
//
//   DEMO_MB=100 npm run demo     more output, more rotations
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { corpusChunks } from '../bench/corpus.mjs';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const HELPER = join(ROOT, 'bin/mesos-logrotate-logger');
const MAX_SIZE = 10 * 1024 * 1024;
const ROTATE = 3;
const bytes = Math.round(Number(process.env.DEMO_MB ?? 40) * 2 ** 20);
const mib = (n) => `${(n / 2 ** 20).toFixed(2)} MiB`;

function fail(message) {
  console.error(`demo: ${message}`);
  process.exit(1);
}

if (!existsSync(join(ROOT, 'dist/mesos-log-splitter.mjs'))) {
  console.log('building the bundle (npm run build) ...');
  if (spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) fail('build failed');
}
// The helper checks `--logrotate_path` as the original does (`logrotate --help` must succeed), even though it
// rotates natively for `rotate N`.
if (spawnSync('/bin/sh', ['-c', 'logrotate --help'], { stdio: 'ignore' }).status !== 0) {
  fail('logrotate is not installed (apt-get install logrotate): the agent passes --logrotate_path=logrotate');
}

// A sandbox laid out as the agent lays it out, so the helper reads the ids from the path.
const base = '/tmp/mesos-log-splitter-demo';
mkdirSync(base, { recursive: true });
const workDir = mkdtempSync(join(base, 'run-'));
const sandbox = join(workDir, 'slaves/demo-agent-S0/frameworks/demo-framework-0000/executors/demo-task/runs/demo-container');
mkdirSync(sandbox, { recursive: true });
const logFilename = join(sandbox, 'stdout');
const argv = [
  '--help=false',
  `--log_filename=${logFilename}`,
  `--logrotate_options=rotate ${ROTATE}`,
  '--logrotate_path=logrotate',
  '--max_size=10MB',
];
// The agent's environment for its helpers: its own minus MESOS_* and LIBPROCESS_*, plus two LIBPROCESS_ values.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(MESOS|LIBPROCESS)_/.test(k)));
Object.assign(env, { LIBPROCESS_IP: '127.0.0.1', LIBPROCESS_NUM_WORKER_THREADS: '8' });
if (env.LOG_SPLITTER_CONFIG === undefined && existsSync('/etc/mesos-log-splitter/config.yaml')) {
  console.log('note: /etc/mesos-log-splitter/config.yaml exists, so its sinks run too (set LOG_SPLITTER_CONFIG to change)');
}

console.log(`sandbox: ${sandbox}`);
console.log(`$ mesos-logrotate-logger ${argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')}`);
console.log(`piping ${mib(bytes)} of generated task output into it ...`);

// Node's 'pipe' stdio is a socketpair; `cat |` gives the helper the read end of a real pipe, as the agent does.
const started = Date.now();
const child = spawn('/bin/sh', ['-c', 'cat | exec "$0" "$@"', HELPER, ...argv], {
  env,
  stdio: ['pipe', 'ignore', 'pipe'],
});
const stderr = [];
child.stderr.on('data', (chunk) => stderr.push(chunk));
const exited = once(child, 'exit');
const input = [];
for (const chunk of corpusChunks(bytes)) {
  input.push(chunk);
  if (!child.stdin.write(chunk)) await once(child.stdin, 'drain');
}
child.stdin.end();
const [code, signal] = await exited;
const seconds = (Date.now() - started) / 1000;
console.log(`helper exited with ${signal ?? code} after ${seconds.toFixed(2)} s\n`);

const files = readdirSync(sandbox).sort();
console.log('sandbox files:');
for (const file of files) console.log(`  ${String(statSync(join(sandbox, file)).size).padStart(10)}  ${file}`);
// Oldest first: stdout.3, stdout.2, stdout.1, stdout.
const kept = [...Array.from({ length: ROTATE }, (_, i) => `stdout.${ROTATE - i}`), 'stdout'].filter((f) => files.includes(f));

const problems = [];
if (code !== 0) problems.push(`helper exited with ${signal ?? code}`);
const corpus = Buffer.concat(input);
const keptData = kept.map((f) => readFileSync(join(sandbox, f)));
const keptBytes = keptData.reduce((sum, b) => sum + b.length, 0);
keptData.forEach((data, i) => {
  if (data.length > MAX_SIZE) problems.push(`${kept[i]} is ${data.length} bytes, over --max_size`);
  if (kept[i] !== 'stdout' && data.at(-1) !== 0x0a) problems.push(`${kept[i]} does not end on a line boundary`);
});
if (!Buffer.concat(keptData).equals(corpus.subarray(corpus.length - keptBytes))) {
  problems.push('the kept files are not the tail of the input');
}
const diagnostics = Buffer.concat(stderr).toString('utf8').split('\n').filter((line) => line !== '');
const ended = diagnostics.map((line) => JSON.parse(line.startsWith('{') ? line : '{}')).find((d) => d.msg === 'stream ended');
if (ended?.bytesIn !== bytes || ended?.bytesDropped !== 0) problems.push('the helper did not report every byte in and none dropped');

console.log(`\ninput ${bytes} bytes = kept ${keptBytes} (${kept.join(' + ')}, the exact tail of the input)`);
console.log(`      + ${bytes - keptBytes} rotated away (rotate ${ROTATE} keeps ${ROTATE} old files)`);
console.log(`\nhelper diagnostics (stderr, JSON lines for the agent's log):`);
for (const line of diagnostics) console.log(`  ${line}`);

if (problems.length > 0) fail(`FAILED:\n  ${problems.join('\n  ')}`);
console.log(`\nOK: ${mib(bytes)} in ${seconds.toFixed(2)} s, every rotated file <= 10 MiB and cut after a newline.`);
console.log(`Look around: ls -l ${sandbox}   (remove with: rm -rf ${workDir})`);
