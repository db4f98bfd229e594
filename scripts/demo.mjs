// `npm run demo`: the helper as the agent runs it, on built-in defaults, with the sandbox files and the tee.
// It starts a syslog receiver in this process (loopback TCP, RFC 6587 octet counting) and writes a config with one
// syslog sink to it (host and port; every other key default) and `agent: {enrich: false}` (no agent runs), passed
// as LOG_SPLITTER_CONFIG: nothing to install, no network beyond loopback. Then it runs one container's two helpers
// with the agent's argv (max_size 10MB, `rotate 3`), each on a real pipe into bin/mesos-logrotate-logger: stdout
// gets ~40 MiB of mixed task output (bench/corpus.mjs), stderr a few lines (one ending in CRLF, one not UTF-8).
// It shows the sandbox files and checks that the kept files are exactly the tail of the input; shows the forwarded
// records (count, samples as received, each helper's `sink summary`) and checks that every line arrived, in order
// and equal to what the task wrote (CR stripped, invalid UTF-8 replaced), and that the counters add up; prints the
// helpers' own diagnostics (what the agent's log would get), and every check as OK or FAIL. Exits 1 on a FAIL.
//
//   DEMO_MB=100 npm run demo     more output, more rotations
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { corpusChunks } from '../bench/corpus.mjs';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const HELPER = join(ROOT, 'bin/mesos-logrotate-logger');
const MAX_SIZE = 10 * 1024 * 1024;
const ROTATE = 3;
const bytes = Math.round(Number(process.env.DEMO_MB ?? 40) * 2 ** 20);
const mib = (n) => `${(n / 2 ** 20).toFixed(2)} MiB`;
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

/**
 * A syslog receiver on loopback TCP: RFC 6587 octet counting (`LEN SP MSG`), each MSG an RFC 5424 message. Hands
 * `onMessages` the messages of each read, as text. `drained()` resolves once every connection was read to its end.
 */
async function startSyslogReceiver(onMessages, onError) {
  const connections = new Set();
  let allClosed = () => undefined;
  const server = createServer((socket) => {
    connections.add(socket);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const messages = [];
      let at = 0;
      for (let space; (space = pending.indexOf(0x20, at)) >= 0; ) {
        const length = pending.toString('latin1', at, space);
        if (!/^[1-9][0-9]{0,8}$/.test(length)) {
          onError(`a frame does not start with an octet count: ${JSON.stringify(pending.toString('latin1', at, at + 40))}`);
          socket.destroy();
          break;
        }
        const end = space + 1 + Number(length);
        if (end > pending.length) break;
        messages.push(pending.toString('utf8', space + 1, end));
        at = end;
      }
      pending = pending.subarray(at);
      onMessages(messages);
    });
    socket.on('error', (error) => onError(`connection: ${error.message}`));
    socket.on('close', () => {
      connections.delete(socket);
      if (pending.length > 0) onError(`a connection closed inside a frame (${pending.length} bytes)`);
      if (connections.size === 0) allClosed();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: server.address().port,
    drained: () => (connections.size === 0 ? Promise.resolve() : new Promise((done) => (allClosed = done))),
    close: () => server.close(),
  };
}

// An RFC 5424 message: PRI, VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID, STRUCTURED-DATA, MSG.
const RFC5424 = /^<\d{1,3}>1 \S+ \S+ \S+ \S+ \S+ (-|\[(?:[^"\]]|"(?:[^"\\]|\\.)*")*\])(?: (.*))?$/s;

/**
 * One stream as the task wrote it (`write`) and as the receiver got it (`receive`), compared line by line as the
 * messages arrive, so no copy of what arrived is kept. A sink gets each line without its newline and a CR before it,
 * with invalid UTF-8 replaced. Each chunk written must end with a newline (the corpus's chunks and STDERR_INPUT do).
 */
class StreamCheck {
  chunks = [];
  #nextChunk = 0;
  #lines = [];
  #nextLine = 0;
  received = 0;
  /** The first line that arrived different from the one written, or was not written: { line, wrote, received }. */
  firstDifference;

  write(chunk) {
    this.chunks.push(chunk);
  }

  receive(message) {
    while (this.#nextLine === this.#lines.length && this.#nextChunk < this.chunks.length) {
      const text = this.chunks[this.#nextChunk++].toString('utf8');
      this.#lines = text.split('\n').slice(0, -1).map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
      this.#nextLine = 0;
    }
    const wrote = this.#lines[this.#nextLine++];
    this.received++;
    if (message !== wrote) this.firstDifference ??= { line: this.received, wrote, received: message };
  }

  linesWritten() {
    let lines = 0;
    for (const chunk of this.chunks) for (let at = -1; (at = chunk.indexOf(0x0a, at + 1)) >= 0; ) lines++;
    return lines;
  }
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

// Each record received goes to forwarded.log and is compared with the line its stream wrote; the first few are shown.
const forwardedPath = join(workDir, 'forwarded.log');
const forwarded = createWriteStream(forwardedPath);
const streams = { stdout: new StreamCheck(), stderr: new StreamCheck() };
const samples = { stdout: [], stderr: [] };
const SAMPLES = { stdout: 2, stderr: 5 }; // stderr: all its lines
const receiverErrors = [];
const receiver = await startSyslogReceiver(
  (messages) => {
    if (messages.length > 0) forwarded.write(`${messages.join('\n')}\n`);
    for (const message of messages) {
      const parsed = RFC5424.exec(message);
      const stream = parsed && / stream="(stdout|stderr)"/.exec(parsed[1])?.[1];
      if (!stream) {
        if (receiverErrors.length < 5) receiverErrors.push(`not RFC 5424 with a stream: ${message.slice(0, 200)}`);
        continue;
      }
      streams[stream].receive(parsed[2] ?? '');
      if (samples[stream].length < SAMPLES[stream]) samples[stream].push(message);
    }
  },
  (error) => receiverErrors.push(error),
);
const configPath = join(workDir, 'config.yaml');
writeFileSync(
  configPath,
  [
    '# Written by scripts/demo.mjs: one syslog sink to the demo\'s own receiver; no agent to ask for task ids.',
    'agent: {enrich: false}',
    'sinks:',
    '  demo-receiver:',
    '    type: syslog',
    '    transport: tcp',
    '    host: 127.0.0.1',
    `    port: ${receiver.port}`,
    '',
  ].join('\n'),
);

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

// Generated before the helpers start, so that this process's time goes to the receiver while they run.
console.log(`generating ${mib(bytes)} of task output ...`);
for (const chunk of corpusChunks(bytes)) streams.stdout.write(chunk);

console.log(`sandbox: ${sandbox}`);
console.log(`config:  ${configPath} (one syslog sink, tcp to the demo's receiver at 127.0.0.1:${receiver.port})`);
const started = Date.now();
const helpers = { stdout: startHelper('stdout'), stderr: startHelper('stderr') };
console.log(`piping ${mib(bytes)} of generated task output into stdout, ${STDERR_INPUT.length} bytes into stderr ...`);
streams.stderr.write(STDERR_INPUT);
helpers.stderr.stdin.end(STDERR_INPUT);
for (const chunk of streams.stdout.chunks) {
  if (!helpers.stdout.stdin.write(chunk)) await once(helpers.stdout.stdin, 'drain');
}
helpers.stdout.stdin.end();
const results = { stdout: await helpers.stdout.exited, stderr: await helpers.stderr.exited };
const seconds = (Date.now() - started) / 1000;
await receiver.drained();
receiver.close();
forwarded.end();
await once(forwarded, 'finish');
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
const corpus = Buffer.concat(streams.stdout.chunks);
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
for (const [stream, written] of [['stdout', bytes], ['stderr', STDERR_INPUT.length]]) {
  const ended = results[stream].diagnostics.find((d) => d.msg === 'stream ended');
  check(
    ended?.bytesIn === written && ended?.bytesDropped === 0,
    `the ${stream} helper reports every byte in (${ended?.bytesIn}) and none dropped`,
  );
}

console.log('\n== forwarded to the syslog receiver (the tee) ==');
const { stdout, stderr } = streams;
console.log(`${stdout.received + stderr.received} records: ${stdout.received} stdout, ${stderr.received} stderr`);
console.log('samples, as received (RFC 5424: <PRI>1 TIME HOST APP-NAME PROCID MSGID [who wrote it] the line):');
for (const message of [...samples.stdout, ...samples.stderr]) console.log(`  ${message}`);
console.log('  (stderr line 2 was written with CRLF, line 4 with a Latin-1 byte: sinks get no CR, and U+FFFD)');
console.log('sink summary (logged by each helper at exit):');
for (const [stream, { received, firstDifference }] of Object.entries(streams)) {
  const written = streams[stream].linesWritten();
  const summary = results[stream].diagnostics.find((d) => d.msg === 'sink summary');
  const { linesIn, linesSent, linesDropped, bufferedLines, reconnects } = summary ?? {};
  console.log(
    `  ${stream}: sink ${summary?.sink} linesIn=${linesIn} linesSent=${linesSent} linesDropped=${linesDropped}` +
      ` bufferedLines=${bufferedLines} reconnects=${reconnects}`,
  );
  check(linesIn === written, `${stream}: the sink took every line the task wrote (linesIn ${linesIn} of ${written})`);
  check(
    linesIn === linesSent + linesDropped + bufferedLines,
    `${stream}: linesIn ${linesIn} = linesSent ${linesSent} + linesDropped ${linesDropped} + bufferedLines ${bufferedLines}`,
  );
  const arrived = `${stream}: ${received} of the ${written} lines written arrived`;
  if (firstDifference !== undefined) {
    const { line, wrote, received: got } = firstDifference;
    const shown = (text) => JSON.stringify(text?.slice(0, 200)) ?? '(no such line)';
    check(false, `${arrived}; line ${line} differs:\n        wrote    ${shown(wrote)}\n        received ${shown(got)}`);
  } else if (received !== written) {
    check(false, arrived);
  } else {
    check(true, `${arrived}, in order, each equal to its line (CR stripped, invalid UTF-8 replaced)`);
  }
}
const receiverProblems = receiverErrors.map((error) => `\n        ${error}`).join('');
check(receiverErrors.length === 0, `the receiver decoded every frame${receiverProblems}`);

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
console.log(`             less ${forwardedPath}   (every forwarded record, as received)`);
console.log(`             (remove with: rm -rf ${workDir})`);
if (checks.some(({ ok }) => !ok)) fail('FAILED (see the checks above)');
console.log(`\nOK: ${mib(bytes)} in ${seconds.toFixed(2)} s, kept in the sandbox and forwarded line for line.`);
