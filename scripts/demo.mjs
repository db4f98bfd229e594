// `npm run demo`: the helper as the agent runs it, on built-in defaults, with the sandbox files and the tee.
// It writes a config with one `file` sink, the built-in forwarder (Docker json-file records in node files that
// collectors tail), on its defaults but for the path, which points into the demo's directory instead of
// /var/log/mesos/containers, and `agent: {enrich: false}` (no agent runs), passed as LOG_SPLITTER_CONFIG: nothing to
// install, no network. Then it runs one container's two helpers with the agent's argv (max_size 10MB, `rotate 3`),
// each on a real pipe into bin/mesos-logrotate-logger: stdout gets ~40 MiB of mixed task output at 8 MiB/s (bench/corpus.mjs),
// stderr a few lines (one ending in CRLF, one not UTF-8). It shows the sandbox files and checks that the kept files
// are exactly the tail of the input; shows the node files, and the same lines side by side as the sandbox has them
// and as the file sink wrote them; checks that every record parses as JSON, that the node files hold the newest
// lines in order, each equal to what the task wrote (CR stripped, invalid UTF-8 replaced), and that every line was
// delivered and the counters add up; prints the helpers' own diagnostics (what the agent's log would get), and every
// check as OK or FAIL. Exits 1 on a FAIL.
//
//   DEMO_MB=100 npm run demo     more output, more rotations
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { corpusChunks } from '../bench/corpus.mjs';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const HELPER = join(ROOT, 'bin/mesos-logrotate-logger');
const MAX_SIZE = 10 * 1024 * 1024;
const ROTATE = 3;
const bytes = Math.round(Number(process.env.DEMO_MB ?? 40) * 2 ** 20);
const mib = (n) => `${(n / 2 ** 20).toFixed(2)} MiB`;
/** Bytes per second the demo's task writes to stdout. */
const WRITE_RATE = 8 * 2 ** 20;
// What the task writes to stderr: sinks get the second line without its CR and the fourth with U+FFFD for the
// Latin-1 byte; the sandbox file keeps the exact bytes.
const STDERR_INPUT = Buffer.from(
  [
    'demo-task: starting 4 workers\n',
    'WARN  config key "timeout" is deprecated, use "timeout_ms"\r\n',
    'ERROR upstream db-1.internal:5432 refused the connection (attempt 3 of 5)\n',
    'WARN  user name is not UTF-8: caf\xe9\n',
    'demo-task: shutting down after SIGTERM\n',
  ].join(''),
  'latin1',
);

function fail(message) {
  console.error(`demo: ${message}`);
  process.exit(1);
}

// The file sink's defaults (docs/sinks/file.md): the demo shows what they do.
const NODE_MAX_SIZE = 10 * 1024 * 1024;
const NODE_MAX_FILES = 5;

/** What a sink gets of a stream: its lines without newline and a CR before it, invalid UTF-8 replaced. */
function sinkLines(chunks) {
  const lines = [];
  for (const chunk of chunks) {
    const text = chunk.toString('utf8');
    for (let at = 0, nl; (nl = text.indexOf('\n', at)) >= 0; at = nl + 1) {
      lines.push(text.slice(at, text[nl - 1] === '\r' ? nl - 1 : nl));
    }
  }
  return lines;
}

/** A stream's node files, oldest first: `log.N` .. `log.1`, `log`. */
function nodeGenerations(log) {
  const rotated = [];
  for (let n = 1; existsSync(`${log}.${n}`); n++) rotated.unshift(`${log}.${n}`);
  return existsSync(log) ? [...rotated, log] : rotated;
}

/**
 * Reads a stream's node files back as a collector's docker parser does: one JSON object per line; a `log` that does
 * not end in a newline goes on in the next record. Returns the lines, the number of records, and the first problem.
 */
function readNodeFiles(files, stream) {
  const lines = [];
  let records = 0;
  let open = '';
  let problem;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    if (!text.endsWith('\n')) problem ??= `${file} does not end with a whole record`;
    for (const line of text.split('\n').slice(0, -1)) {
      records++;
      let record;
      try {
        record = JSON.parse(line);
      } catch (error) {
        problem ??= `${file}: a record is not JSON (${error.message}): ${line.slice(0, 120)}`;
        continue;
      }
      if (typeof record.log !== 'string' || record.stream !== stream || !/^\d{4}-\d\d-\d\dT[\d:]{8}\.\d{9}Z$/.test(record.time)) {
        problem ??= `${file}: not a json-file record of ${stream}: ${line.slice(0, 200)}`;
        continue;
      }
      open += record.log;
      if (open.endsWith('\n')) {
        lines.push(open.slice(0, -1));
        open = '';
      }
    }
  }
  if (open !== '') lines.push(open);
  return { lines, records, problem };
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
const ids = { agent_id: 'demo-agent-S0', framework_id: 'demo-framework-0000', executor_id: 'demo-task', container_id: 'demo-container' };
const sandbox = join(workDir, `slaves/${ids.agent_id}/frameworks/${ids.framework_id}/executors/${ids.executor_id}/runs/${ids.container_id}`);
mkdirSync(sandbox, { recursive: true });

// The default path, under the demo's directory instead of /var/log/mesos/containers.
const nodeDir = join(workDir, 'node');
const configPath = join(workDir, 'config.yaml');
writeFileSync(
  configPath,
  [
    '# Written by scripts/demo.mjs: one file sink on its defaults but for the path; no agent to ask for task ids.',
    'agent: {enrich: false}',
    'sinks:',
    '  node-files:',
    '    type: file',
    `    path: ${nodeDir}/{framework_id}_{executor_id}_{container_id}-{stream}.log`,
    '',
  ].join('\n'),
);
const nodeLog = (stream) => join(nodeDir, `${ids.framework_id}_${ids.executor_id}_${ids.container_id}-${stream}.log`);

// The agent's environment for its helpers: its own minus MESOS_* and LIBPROCESS_*, plus two LIBPROCESS_ values.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(MESOS|LIBPROCESS)_/.test(k)));
Object.assign(env, { LIBPROCESS_IP: '127.0.0.1', LIBPROCESS_NUM_WORKER_THREADS: '8', LOG_SPLITTER_CONFIG: configPath });
const daemonSocket = env.LOG_SPLITTER_DAEMON_SOCKET || '/run/mesos-log-splitter/daemon.sock';
if (env.LOG_SPLITTER_MODE !== 'standalone' && existsSync(daemonSocket)) {
  console.log(`note: ${daemonSocket} exists: a daemon answering there forwards with its own config, not the demo's`);
  console.log('      (LOG_SPLITTER_MODE=standalone npm run demo keeps the helpers standalone)');
}

const argvFor = (logFilename) => [
  '--help=false',
  `--log_filename=${logFilename}`,
  `--logrotate_options=rotate ${ROTATE}`,
  '--logrotate_path=logrotate',
  '--max_size=10MB',
];

/** Starts a helper for one stream, as the agent does; resolves with its exit and its diagnostics once it exited. */
function startHelper(stream) {
  const argv = argvFor(join(sandbox, stream));
  console.log(`$ mesos-logrotate-logger ${argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')}`);
  // Node's 'pipe' stdio is a socketpair; `cat |` gives the helper the read end of a real pipe, as the agent does.
  const child = spawn('/bin/sh', ['-c', 'cat | exec "$0" "$@"', HELPER, ...argv], {
    env,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const stderr = [];
  child.stderr.on('data', (chunk) => stderr.push(chunk));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    exit: signal ?? code,
    diagnostics: Buffer.concat(stderr)
      .toString('utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => (line.startsWith('{') ? JSON.parse(line) : { msg: line })),
  }));
  return { stdin: child.stdin, exited };
}

// Generated before the helpers start, so that this process's time goes to piping while they run.
console.log(`generating ${mib(bytes)} of task output ...`);
const written = { stdout: [...corpusChunks(bytes)], stderr: [STDERR_INPUT] };

console.log(`sandbox: ${sandbox}`);
console.log(`config:  ${configPath} (one file sink, node files in ${nodeDir})`);
const started = Date.now();
const helpers = { stdout: startHelper('stdout'), stderr: startHelper('stderr') };
console.log(`piping ${mib(bytes)} of generated task output into stdout, ${STDERR_INPUT.length} bytes into stderr ...`);
helpers.stderr.stdin.end(STDERR_INPUT);
// At a very chatty task's pace (WRITE_RATE), not at memcpy speed: that is what a sink is sized for (the file sink
// at full pipe speed, and its counted drops: docs/sinks/file.md).
let sent = 0;
for (const chunk of written.stdout) {
  if (!helpers.stdout.stdin.write(chunk)) await once(helpers.stdout.stdin, 'drain');
  sent += chunk.length;
  const ahead = (sent / WRITE_RATE) * 1000 - (Date.now() - started);
  if (ahead > 0) await sleep(ahead);
}
helpers.stdout.stdin.end();
const results = { stdout: await helpers.stdout.exited, stderr: await helpers.stderr.exited };
const seconds = (Date.now() - started) / 1000;
const exits = `${results.stdout.exit} (stdout), ${results.stderr.exit} (stderr)`;
console.log(`helpers exited with ${exits} after ${seconds.toFixed(2)} s`);

const checks = [];
const check = (ok, what) => checks.push({ ok, what });
for (const [stream, { exit }] of Object.entries(results)) check(exit === 0, `the ${stream} helper exited with ${exit}`);

console.log('\n== sandbox files ==');
const files = readdirSync(sandbox).sort();
for (const file of files) console.log(`  ${String(statSync(join(sandbox, file)).size).padStart(10)}  ${file}`);
// Oldest first: stdout.3, stdout.2, stdout.1, stdout.
const kept = [...Array.from({ length: ROTATE }, (_, i) => `stdout.${ROTATE - i}`), 'stdout'].filter((f) => files.includes(f));
const corpus = Buffer.concat(written.stdout);
const keptData = kept.map((f) => readFileSync(join(sandbox, f)));
const keptBytes = keptData.reduce((sum, b) => sum + b.length, 0);
console.log(`stdout: input ${bytes} bytes = kept ${keptBytes} (${kept.join(' + ')}, the exact tail of the input)`);
console.log(`          + ${bytes - keptBytes} rotated away (rotate ${ROTATE} keeps ${ROTATE} old files)`);
const oversized = keptData.filter((data) => data.length > MAX_SIZE).length;
const cutMidLine = keptData.filter((data, i) => kept[i] !== 'stdout' && data.at(-1) !== 0x0a).length;
check(oversized === 0 && cutMidLine === 0, `every kept stdout file <= 10 MiB and each rotated one cut after a newline`);
check(
  Buffer.concat(keptData).equals(corpus.subarray(corpus.length - keptBytes)),
  'the kept stdout files are the exact tail of the input',
);
const stderrFile = existsSync(join(sandbox, 'stderr')) ? readFileSync(join(sandbox, 'stderr')) : Buffer.alloc(0);
check(stderrFile.equals(STDERR_INPUT), `stderr (${stderrFile.length} bytes) is the exact input, CR and non-UTF-8 byte kept`);
for (const [stream, input] of [['stdout', bytes], ['stderr', STDERR_INPUT.length]]) {
  const ended = results[stream].diagnostics.find((d) => d.msg === 'stream ended');
  check(
    ended?.bytesIn === input && ended?.bytesDropped === 0,
    `the ${stream} helper reports every byte in (${ended?.bytesIn}) and none dropped`,
  );
}

console.log('\n== node files written by the file sink (the tee: Docker json-file records, for collectors to tail) ==');
const nodeFiles = existsSync(nodeDir) ? readdirSync(nodeDir).sort() : [];
for (const file of nodeFiles) {
  const stats = statSync(join(nodeDir, file));
  console.log(`  ${(stats.mode & 0o777).toString(8).padStart(4, '0')} ${String(stats.size).padStart(10)}  ${file}`);
}
const node = {};
for (const stream of ['stdout', 'stderr']) {
  const generations = nodeGenerations(nodeLog(stream));
  const expected = sinkLines(written[stream]);
  const { lines, records, problem } = readNodeFiles(generations, stream);
  node[stream] = { generations, expected, lines };
  const rotatedAway = expected.length - lines.length;
  console.log(
    `${stream}: ${expected.length} lines written; the ${generations.length} node file(s) hold the newest ${lines.length}` +
      ` (${records} records)${rotatedAway > 0 ? `, ${rotatedAway} older ones rotated away (max_files ${NODE_MAX_FILES})` : ''}`,
  );
  check(problem === undefined, `${stream}: every node record is one JSON object of a json-file record${problem ? `:\n        ${problem}` : ''}`);
  const oversizedNode = generations.filter((f) => statSync(f).size > NODE_MAX_SIZE).length;
  check(
    generations.length <= NODE_MAX_FILES && oversizedNode === 0,
    `${stream}: ${generations.length} node file(s), at most ${NODE_MAX_FILES}, each <= 10 MiB`,
  );
  // The oldest kept record may continue a line whose start was rotated away.
  const tail = expected.slice(expected.length - lines.length);
  const firstDifference = lines.findIndex((line, i) => line !== tail[i] && !(i === 0 && tail[0].endsWith(line)));
  const shown = (text) => JSON.stringify(text?.slice(0, 200)) ?? '(no such line)';
  check(
    lines.length > 0 && lines.length <= expected.length && firstDifference < 0,
    firstDifference < 0
      ? `${stream}: the node files hold the newest ${lines.length} lines in order, each equal to its line (CR stripped, invalid UTF-8 replaced)`
      : `${stream}: node line ${firstDifference + 1} of ${lines.length} differs:\n        wrote ${shown(tail[firstDifference])}\n        file  ${shown(lines[firstDifference])}`,
  );
  const summary = results[stream].diagnostics.find((d) => d.msg === 'sink summary');
  const { linesIn, linesSent, linesDropped, bufferedLines } = summary ?? {};
  console.log(`  sink summary: linesIn=${linesIn} linesSent=${linesSent} linesDropped=${linesDropped} bufferedLines=${bufferedLines}`);
  check(linesIn === expected.length, `${stream}: the sink took every line the task wrote (linesIn ${linesIn} of ${expected.length})`);
  check(
    linesSent === linesIn && linesIn === linesSent + linesDropped + bufferedLines,
    `${stream}: every line delivered, linesIn ${linesIn} = linesSent ${linesSent} + linesDropped ${linesDropped} + bufferedLines ${bufferedLines}`,
  );
}

console.log('\n== side by side: each line as the sandbox file has it, and its record in the node file ==');
const sandboxLines = (file, count) => {
  const data = readFileSync(join(sandbox, file));
  const lines = [];
  for (let end = data.length; lines.length < count && end > 0; ) {
    const start = data.lastIndexOf(0x0a, end - 2) + 1;
    lines.unshift(data.subarray(start, end));
    end = start;
  }
  return lines;
};
const nodeRecords = (file, count) => readFileSync(file, 'utf8').split('\n').slice(0, -1).slice(-count);
const sideBySide = (stream, sandboxFile, count) => {
  const pairs = sandboxLines(sandboxFile, count);
  const records = nodeRecords(node[stream].generations.at(-1), count);
  for (let i = 0; i < pairs.length; i++) {
    console.log(`  sandbox ${sandboxFile.padEnd(6)} ${JSON.stringify(pairs[i].toString('latin1')).slice(0, 200)}`);
    console.log(`  node    ${stream.padEnd(6)} ${(records[i] ?? '(missing)').slice(0, 400)}`);
  }
};
sideBySide('stdout', 'stdout', 2);
sideBySide('stderr', 'stderr', 5);
console.log('  (the sandbox keeps the exact bytes, shown as Latin-1; stderr line 2 was written with CRLF and line 4 with');
console.log('   a Latin-1 byte: a sink gets no CR, and U+FFFD; the ids in attrs come from the sandbox path)');

console.log("\n== helper diagnostics (JSON lines on stderr, for the agent's log; shown without time, pid, log_filename) ==");
const LEVELS = { 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
for (const [stream, { diagnostics }] of Object.entries(results)) {
  for (const { level, time, pid, log_filename, name, msg, ...fields } of diagnostics) {
    const rest = Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
    console.log(`  ${stream} ${LEVELS[level] ?? level}: ${msg}${rest}`);
  }
}

console.log('\n== checks ==');
for (const { ok, what } of checks) console.log(`${ok ? 'OK  ' : 'FAIL'}  ${what}`);
console.log(`\nLook around: ls -l ${sandbox}`);
console.log(`             ls -l ${nodeDir}   (the node files a collector would tail)`);
console.log(`             (remove with: rm -rf ${workDir})`);
if (checks.some(({ ok }) => !ok)) fail('FAILED (see the checks above)');
console.log(`\nOK: ${mib(bytes)} in ${seconds.toFixed(2)} s, kept in the sandbox and forwarded line for line to the node files.`);
