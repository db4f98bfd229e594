// Deterministic corpus of realistic mixed log output: plain app lines, access-log lines, JSON lines of varied
// widths, multi-line Java and Python stack traces, and an occasional long line (a few KiB, below s6-log's 8 KiB
// line limit). Seeded PRNG, so every run and every machine gets the same bytes.
//
//   node bench/corpus.mjs [--mb=N] [FILE]   writes N MiB (default BENCH_MB or 256) to FILE, or the cache file
//
// Library use: writeCorpus(streamOrPath, bytes), ensureCorpus(bytes) (cached under bench/.work/) and
// splitCorpus(file, at) (the same bytes as two files, cached beside it).
import { closeSync, createWriteStream, existsSync, mkdirSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bump when the generator changes, so cached corpora are regenerated. */
export const CORPUS_VERSION = 1;
export const WORK_DIR = join(dirname(fileURLToPath(import.meta.url)), '.work');
const MiB = 1 << 20;

/** Corpus size from `--mb=N` or BENCH_MB (MiB), default 256 MiB. */
export function corpusBytesFromEnv(argv = process.argv, env = process.env, defaultMb = 256) {
  const flag = argv.find((a) => a.startsWith('--mb='));
  const mb = Number(flag ? flag.slice(5) : (env.BENCH_MB ?? defaultMb));
  if (!(mb > 0)) throw new Error(`bad corpus size '${flag ?? env.BENCH_MB}': want MiB > 0`);
  return Math.round(mb * MiB);
}

/** mulberry32: small, fast, good enough for test data. */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  return { next, int, pick: (list) => list[int(list.length)], hex: (n) => hexOf(int, n) };
}

function hexOf(int, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[int(16)];
  return s;
}

const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR', 'TRACE'];
const LOGGERS = [
  'com.example.orders.OrderService', 'com.example.http.RequestHandler', 'org.apache.kafka.clients.NetworkClient',
  'io.netty.channel.DefaultChannelPipeline', 'c.e.billing.InvoiceJob', 'org.hibernate.SQL', 'app.worker', 'scheduler',
];
const THREADS = ['main', 'worker-1', 'worker-2', 'worker-3', 'pool-4-thread-1', 'kafka-producer-network-thread', 'grpc-default-executor-0'];
const MESSAGES = [
  (r) => `Processed request id=${r.hex(16)} in ${r.int(900)}ms status=${r.pick([200, 200, 200, 201, 204, 404, 500])}`,
  (r) => `Connecting to ${r.pick(['db', 'cache', 'kafka', 'auth'])}-${r.int(9)}.internal:${r.pick([5432, 6379, 9092, 443])} (attempt ${r.int(5) + 1})`,
  (r) => `User ${r.pick(['alice', 'bob', 'chloé', 'dmitri', '田中', 'eve'])} logged in from 10.${r.int(256)}.${r.int(256)}.${r.int(256)}`,
  (r) => `Cache miss for key=session:${r.hex(24)}; loading from store`,
  (r) => `Committed offset ${r.int(1e9)} for partition events-${r.int(64)}`,
  (r) => `GC pause ${r.int(300)}ms, heap ${r.int(4000)}M/${4096}M`,
  (r) => `Retrying batch of ${r.int(500)} records after ${r.pick(['timeout', 'ECONNRESET', 'HTTP 503', 'leader change'])}`,
  (r) => `select o.id, o.total from orders o where o.customer_id=${r.int(1e6)} and o.created_at > ?`,
  (r) => `Heartbeat ok`,
  (r) => `Scheduled job ${r.pick(['cleanup', 'reindex', 'report', 'sync'])} finished, ${r.int(10000)} items, next run in ${r.int(60)}m`,
];
const PATHS = ['/api/v1/orders', '/api/v1/orders/42/items', '/healthz', '/metrics', '/static/app.js', '/login', '/api/v2/search?q=shoes&page=3'];
const AGENTS = ['curl/8.5.0', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36', 'kube-probe/1.29', 'Go-http-client/1.1'];
const JAVA_FRAMES = [
  'com.example.orders.OrderService.place(OrderService.java:%)', 'com.example.http.RequestHandler.handle(RequestHandler.java:%)',
  'org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:%)',
  'org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:%)',
  'java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:%)',
  'java.base/java.lang.Thread.run(Thread.java:%)', 'io.netty.channel.nio.NioEventLoop.run(NioEventLoop.java:%)',
  'org.hibernate.internal.SessionImpl.flush(SessionImpl.java:%)', 'jdk.internal.reflect.GeneratedMethodAccessor42.invoke(Unknown Source)',
];
const JAVA_EXCEPTIONS = [
  'java.lang.NullPointerException: Cannot invoke "String.length()" because "name" is null',
  'java.net.SocketTimeoutException: Read timed out', 'java.lang.IllegalStateException: Connection pool shut down',
  'org.hibernate.exception.ConstraintViolationException: could not execute statement',
];
const PY_FRAMES = [
  ['/app/worker/tasks.py', 'process', 'result = handler(payload)'], ['/app/worker/handlers.py', 'handle_order', 'total = sum(i["price"] for i in items)'],
  ['/usr/lib/python3.11/json/decoder.py', 'decode', 'obj, end = self.raw_decode(s, idx=_w(s, 0).end())'],
  ['/app/lib/db.py', 'execute', 'return self.cursor.execute(sql, params)'],
];
const PY_ERRORS = ['KeyError: \'price\'', 'json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)', 'psycopg2.OperationalError: server closed the connection unexpectedly'];

/** One log entry (one line, or several for a stack trace), newline-terminated. */
function entry(r, ts) {
  const x = r.next();
  if (x < 0.55) {
    return `${ts} ${r.pick(LEVELS).padEnd(5)} [${r.pick(THREADS)}] ${r.pick(LOGGERS)} - ${r.pick(MESSAGES)(r)}\n`;
  }
  if (x < 0.7) {
    const ip = `${r.int(223) + 1}.${r.int(256)}.${r.int(256)}.${r.int(256)}`;
    return `${ip} - - [${ts}] "${r.pick(['GET', 'GET', 'POST', 'PUT'])} ${r.pick(PATHS)} HTTP/1.1" ${r.pick([200, 200, 304, 404, 502])} ${r.int(50000)} "-" "${r.pick(AGENTS)}"\n`;
  }
  if (x < 0.945) {
    const fields = { ts, level: r.pick(LEVELS).toLowerCase(), logger: r.pick(LOGGERS), msg: r.pick(MESSAGES)(r) };
    const extra = r.int(6); // 0..5 extra fields: widths vary from ~110 bytes to ~350
    for (let i = 0; i < extra; i++) {
      const key = r.pick(['trace_id', 'span_id', 'user_id', 'region', 'latency_ms', 'bytes', 'retries', 'tags', 'path']);
      fields[`${key}${i}`] = r.int(3) === 0 ? r.int(1e6) : r.hex(6 + r.int(26));
    }
    return `${JSON.stringify(fields)}\n`;
  }
  if (x < 0.975) {
    let s = `${ts} ERROR [${r.pick(THREADS)}] ${r.pick(LOGGERS)} - request failed\n${r.pick(JAVA_EXCEPTIONS)}\n`;
    const depth = 5 + r.int(36);
    for (let i = 0; i < depth; i++) s += `\tat ${r.pick(JAVA_FRAMES).replace('%', String(20 + r.int(2000)))}\n`;
    if (r.int(2) === 0) s += `Caused by: ${r.pick(JAVA_EXCEPTIONS)}\n\tat ${r.pick(JAVA_FRAMES).replace('%', '77')}\n\t... ${r.int(40)} more\n`;
    return s;
  }
  if (x < 0.997) {
    let s = 'Traceback (most recent call last):\n';
    const depth = 2 + r.int(8);
    for (let i = 0; i < depth; i++) {
      const [file, fn, code] = r.pick(PY_FRAMES);
      s += `  File "${file}", line ${1 + r.int(400)}, in ${fn}\n    ${code}\n`;
    }
    return `${s}${r.pick(PY_ERRORS)}\n`;
  }
  // Long line: a request dump of 1-5 KiB.
  return `${ts} DEBUG [${r.pick(THREADS)}] payload=${r.hex(1024 + r.int(4096))}\n`;
}

/**
 * Yields Buffers of about 1 MiB that add up to exactly `totalBytes`, ending with a newline. The sequence is a
 * pure function of the seed: a shorter corpus is a prefix of a longer one, up to its last filler line.
 */
export function* corpusChunks(totalBytes, seed = 20240501) {
  const r = prng(seed);
  let clock = Date.UTC(2024, 4, 1, 12, 0, 0);
  let produced = 0;
  let parts = [];
  let partBytes = 0;
  while (produced < totalBytes) {
    clock += r.int(50);
    let text = entry(r, new Date(clock).toISOString());
    let size = Buffer.byteLength(text);
    const room = totalBytes - produced;
    if (size > room) {
      text = `${'.'.repeat(room - 1)}\n`; // filler so the corpus ends on a whole line
      size = room;
    }
    parts.push(text);
    partBytes += size;
    produced += size;
    if (partBytes >= MiB || produced === totalBytes) {
      yield Buffer.from(parts.join(''));
      parts = [];
      partBytes = 0;
    }
  }
}

/** Writes `totalBytes` of corpus to a Writable or a file path, honouring backpressure. */
export async function writeCorpus(out, totalBytes, seed) {
  const stream = typeof out === 'string' ? createWriteStream(out) : out;
  for (const chunk of corpusChunks(totalBytes, seed)) {
    if (!stream.write(chunk)) await once(stream, 'drain');
  }
  if (typeof out === 'string') {
    stream.end();
    await once(stream, 'finish');
  }
}

/** Path of a cached corpus of `totalBytes`, generated on first use (written aside, then renamed into place). */
export async function ensureCorpus(totalBytes, dir = WORK_DIR) {
  const file = join(dir, `corpus-v${CORPUS_VERSION}-${totalBytes}.log`);
  if (existsSync(file) && statSync(file).size === totalBytes) return file;
  mkdirSync(dir, { recursive: true });
  const partial = `${file}.${process.pid}.tmp`;
  await writeCorpus(partial, totalBytes);
  renameSync(partial, file);
  return file;
}

/**
 * The corpus as two files, its first `at` bytes and the rest (cached beside it), so that a producer can stamp the
 * time between them with two plain `cat`s: `cat` writes 128 KiB at a time, where `head`/`tail` write 8 KiB.
 */
export function splitCorpus(file, at) {
  const parts = [`${file}.head-${at}`, `${file}.tail-${at}`];
  const total = statSync(file).size;
  if (parts.every((part, i) => existsSync(part) && statSync(part).size === (i === 0 ? at : total - at))) return parts;
  const block = Buffer.allocUnsafe(1 << 20);
  const from = openSync(file, 'r');
  try {
    let position = 0;
    for (const [i, part] of parts.entries()) {
      const partial = `${part}.${process.pid}.tmp`;
      const to = openSync(partial, 'w');
      try {
        for (const end = i === 0 ? at : total; position < end; ) {
          const n = readSync(from, block, 0, Math.min(block.length, end - position), position);
          writeSync(to, block, 0, n);
          position += n;
        }
      } finally {
        closeSync(to);
      }
      renameSync(partial, part);
    }
  } finally {
    closeSync(from);
  }
  return parts;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const bytes = corpusBytesFromEnv();
  const target = process.argv.slice(2).find((a) => !a.startsWith('--'));
  const started = Date.now();
  const file = target ?? (await ensureCorpus(bytes));
  if (target) await writeCorpus(target, bytes);
  console.log(`${file}: ${bytes} bytes (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
