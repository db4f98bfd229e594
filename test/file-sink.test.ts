// End to end: the built helper, started as the agent starts it, tees a real pipe into the sandbox and node files that
// collectors tail (Docker json-file and CRI formats), rotated by size.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createDiagnostics } from '../src/diagnostics.js';
import { LineBatch } from '../src/lines/line-batch.js';
import { metadataFromPath, type StreamMetadata } from '../src/mesos/metadata.js';
import { NodeFiles } from '../src/sinks/file/node-files.js';
import { NodePath } from '../src/sinks/file/node-path.js';
import { RecordEncoder } from '../src/sinks/file/records.js';
import { numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon } from './helpers/daemon.js';
import { agentEnv } from './helpers/env.js';
import { makeSandbox } from './helpers/sandbox.js';
import { expectSummaryAddsUp, LAUNCHER_DIR, spawnLogger, type Diagnostic, type PipedProcess } from './helpers/spawn.js';
import { isRoot, mountTmpfs, unmount } from './helpers/tmpfs.js';
import { sleep, waitFor } from './helpers/wait.js';

const SHUTDOWN_MS = 1500;
const WRITE = 64 * 1024;
const IDS = { agent_id: 'S1', framework_id: 'F1', executor_id: 'E1', container_id: 'C1' };
/** RFC 3339 with nine fractional digits, UTC: what Docker's json-file writes. */
const DOCKER_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
/**
 * A CRI log line as the kubelet parses it (pkg/kubelet/kuberuntime/logs): RFC3339Nano timestamp, stream, tag (P: the
 * line goes on in the next record, F: it ends here), one space, the content.
 */
const CRI_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$/s;

interface Setup {
  work: string;
  logFilename: string;
  configFile: string;
}

/** A Mesos sandbox path (the ids come from it) and a config of the given sinks; `node` is the node files' root. */
function setup(sinks: (node: string) => Record<string, unknown>, runPath = 'slaves/S1/frameworks/F1/executors/E1/runs/C1'): Setup {
  const work = dirname(makeSandbox().dir);
  const logFilename = join(work, runPath, 'stdout');
  mkdirSync(dirname(logFilename), { recursive: true });
  const configFile = join(work, 'config.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      agent: { enrich: false },
      lines: { max_line_bytes: '1KB' },
      shutdown_timeout_ms: SHUTDOWN_MS,
      sinks: sinks(join(work, 'node')),
    }),
  );
  return { work, logFilename, configFile };
}

const start = ({ logFilename, configFile }: Setup): Promise<PipedProcess> =>
  spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: agentEnv({ LOG_SPLITTER_CONFIG: configFile }) });

/** Writes `input` in 64 KiB pieces, ends the pipe; the helper exits 0 with the sandbox file byte-exact. */
async function run(at: Setup, input: Buffer): Promise<PipedProcess> {
  const helper = await start(at);
  for (let i = 0; i < input.length; i += WRITE) await helper.write(input.subarray(i, i + WRITE));
  await helper.end();
  const exit = await helper.exited;
  expect(exit.code, helper.stderr()).toBe(0);
  expect(readFileSync(at.logFilename).equals(input)).toBe(true);
  return helper;
}

const summaryOf = (helper: PipedProcess, sink: string): Diagnostic | undefined =>
  helper.diagnostics().find((d) => d.msg === 'sink summary' && d.sink === sink);

/** What a sink gets of `input`: its lines without newline and CR, invalid UTF-8 replaced. */
function linesOf(input: Buffer): string[] {
  const lines = input.toString('utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

/** Input with everything a JSON encoder or a CRI line can get wrong, cut long lines and a last line without newline. */
function trickyInput(): Buffer {
  return Buffer.concat([
    numberedLines(3000, 100, 'before'),
    Buffer.from('quote " backslash \\ tab \t bell \x07 nul \x00 esc \x1b del \x7f\n'),
    Buffer.from('unicode é ü 😀 \u2028 done\n'),
    Buffer.from('crlf line\r\n'),
    Buffer.from([...Buffer.from('bad utf8 '), 0xc3, 0x28, 0xff, 0x0a]),
    Buffer.from('\n'),
    Buffer.from(`long ${'L'.repeat(2500)}\n`),
    numberedLines(3000, 100, 'after'),
    Buffer.from('last, no newline'),
  ]);
}

/** The node files of `log`, oldest first: log.N .. log.1, log. */
function generations(log: string): string[] {
  const dir = dirname(log);
  const name = log.slice(dir.length + 1);
  const rotated = readdirSync(dir)
    .filter((f) => f.startsWith(`${name}.`) && /^\d+$/.test(f.slice(name.length + 1)))
    .map((f) => Number(f.slice(name.length + 1)))
    .sort((a, b) => b - a)
    .map((n) => `${log}.${n}`);
  return existsSync(log) ? [...rotated, log] : rotated;
}

/** Docker json-file records back into lines: a `log` without its newline goes on in the next record. */
function dockerLines(files: string[]): { lines: string[]; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const lines: string[] = [];
  let open = '';
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('\n'), `${file} ends with a whole record`).toBe(true);
    for (const line of text.slice(0, -1).split('\n')) {
      const record = JSON.parse(line) as Record<string, unknown>;
      records.push(record);
      const log = record.log as string;
      if (log.endsWith('\n')) {
        lines.push(open + log.slice(0, -1));
        open = '';
      } else {
        open += log;
      }
    }
  }
  if (open !== '') lines.push(open);
  return { lines, records };
}

/** CRI records back into lines: P pieces go on until an F. */
function criLines(file: string): { lines: string[]; tags: string[] } {
  const lines: string[] = [];
  const tags: string[] = [];
  let open = '';
  const text = readFileSync(file, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    const parsed = CRI_LINE.exec(line);
    expect(parsed, `a CRI line: ${JSON.stringify(line.slice(0, 100))}`).not.toBeNull();
    const [, time, stream, tag, content] = parsed!;
    expect(Number.isNaN(Date.parse(time))).toBe(false);
    expect(stream).toBe('stdout');
    tags.push(tag);
    open += content;
    if (tag === 'F') {
      lines.push(open);
      open = '';
    }
  }
  if (open !== '') lines.push(open);
  return { lines, tags };
}

afterAll(killDaemons);

describe('file sink in the helper', () => {
  it('docker_json: one JSON object per line, every line in order, ids in attrs, partial pieces without newline', async () => {
    const at = setup((node) => ({ node: { type: 'file', path: `${node}/{framework_id}_{executor_id}_{container_id}-{stream}.log` } }));
    const input = trickyInput();
    const started = Date.now();
    const helper = await run(at, input);
    const file = join(at.work, 'node/F1_E1_C1-stdout.log');
    expect(generations(file)).toEqual([file]);
    const { lines, records } = dockerLines([file]);
    expect(lines).toEqual(linesOf(input));
    for (const record of records) {
      expect(Object.keys(record)).toEqual(['log', 'stream', 'time', 'attrs']);
      expect(record.stream).toBe('stdout');
      expect(record.time).toMatch(DOCKER_TIME);
      const time = Date.parse(record.time as string);
      expect(time).toBeGreaterThanOrEqual(started - 1);
      expect(time).toBeLessThanOrEqual(Date.now());
      expect(record.attrs).toMatchObject(IDS);
      expect(Object.values(record.attrs as object).every((v) => typeof v === 'string')).toBe(true);
    }
    // The 2505-byte line is cut at 1 KiB: two pieces without newline, the last with it; the unterminated last line too.
    const long = records.filter((r) => (r.log as string).startsWith('long ') || /^L+\n?$/.test(r.log as string));
    expect(long.map((r) => (r.log as string).length)).toEqual([1024, 1024, 458]);
    expect((records.at(-1)!.log as string)).toBe('last, no newline');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    const summary = summaryOf(helper, 'node');
    expectSummaryAddsUp(summary, helper.written());
    expect(summary).toMatchObject({ linesDropped: 0, bufferedLines: 0, linesSent: helper.written().lines });
  });

  it('cri: RFC3339Nano, stream, P for a piece the next record continues, F for a line that ends', async () => {
    const at = setup((node) => ({ node: { type: 'file', format: 'cri', path: `${node}/{container_id}-{stream}.log` } }));
    const input = trickyInput();
    const helper = await run(at, input);
    const { lines, tags } = criLines(join(at.work, 'node/C1-stdout.log'));
    expect(lines).toEqual(linesOf(input));
    // Two cut pieces of the long line, and the last line whose newline never came.
    expect(tags.filter((t) => t === 'P')).toHaveLength(3);
    expect(tags.at(-1)).toBe('P');
    expectSummaryAddsUp(summaryOf(helper, 'node'), helper.written());
  });

  it('rotates by size like json-file: file.N .. file.1, file; all kept in order, or the newest max_files and none between', async () => {
    const at = setup((node) => ({
      all: { type: 'file', path: `${node}/all/{container_id}-{stream}.log`, max_size: '64KB', max_files: 100 },
      three: { type: 'file', path: `${node}/three/{container_id}-{stream}.log`, max_size: '64KB', max_files: 3 },
    }));
    const input = numberedLines(8000, 120, 'rotating');
    const helper = await run(at, input);
    const written = linesOf(input);

    const all = generations(join(at.work, 'node/all/C1-stdout.log'));
    expect(all.length).toBeGreaterThan(20);
    for (const file of all) expect(statSync(file).size).toBeLessThanOrEqual(64 * 1024);
    expect(dockerLines(all).lines).toEqual(written);

    const threeLog = join(at.work, 'node/three/C1-stdout.log');
    const three = generations(threeLog);
    expect(three).toEqual([`${threeLog}.2`, `${threeLog}.1`, threeLog]);
    const kept = dockerLines(three).lines;
    expect(kept.length).toBeGreaterThan(0);
    expect(kept).toEqual(written.slice(written.length - kept.length));
    for (const sink of ['all', 'three']) expectSummaryAddsUp(summaryOf(helper, sink), helper.written());
  });

  it('renders the path template from odd ids: unsafe characters become _, dots-only names and long ids made safe', async () => {
    const longContainer = `c${'0123456789'.repeat(10)}`;
    const at = setup(
      (node) => ({ node: { type: 'file', path: `${node}/{framework_id}/{executor_id}/{container_id}-{stream}.{date:%Y}.log` } }),
      `slaves/S1/frameworks/.../executors/we%ird ex:ec\u00e9/runs/${longContainer}`,
    );
    const input = numberedLines(100, 50, 'odd');
    await run(at, input);
    const digest = createHash('sha256').update(longContainer).digest('hex').slice(0, 8);
    const year = new Date().getUTCFullYear();
    const dir = join(at.work, 'node/___/we_ird_ex_ec_');
    const file = join(dir, `${longContainer.slice(0, 51)}-${digest}-stdout.${year}.log`);
    expect(dockerLines([file]).lines).toEqual(linesOf(input));
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    expect(statSync(dirname(dir)).mode & 0o777).toBe(0o755);
  });

  it('a symbolic link planted at the file path is removed, not followed; one planted as a directory is refused', async () => {
    const at = setup((node) => ({
      flat: { type: 'file', path: `${node}/flat/{container_id}-{stream}.log` },
      nested: { type: 'file', path: `${node}/nested/{framework_id}/{container_id}-{stream}.log` },
    }));
    const victim = join(at.work, 'victim');
    writeFileSync(victim, 'secret\n');
    const elsewhere = join(at.work, 'elsewhere');
    mkdirSync(elsewhere);
    mkdirSync(join(at.work, 'node/flat'), { recursive: true });
    mkdirSync(join(at.work, 'node/nested'), { recursive: true });
    symlinkSync(victim, join(at.work, 'node/flat/C1-stdout.log'));
    symlinkSync(elsewhere, join(at.work, 'node/nested/F1'));
    const input = numberedLines(500, 80, 'planted');
    const helper = await run(at, input);

    expect(readFileSync(victim, 'utf8')).toBe('secret\n');
    const flat = join(at.work, 'node/flat/C1-stdout.log');
    expect(lstatSync(flat).isFile()).toBe(true);
    expect(dockerLines([flat]).lines).toEqual(linesOf(input));
    expect(helper.diagnostics().some((d) => d.sink === 'flat' && d.was === 'a symbolic link')).toBe(true);

    expect(readdirSync(elsewhere)).toEqual([]);
    const nested = summaryOf(helper, 'nested');
    expectSummaryAddsUp(nested, helper.written());
    expect(nested).toMatchObject({ linesSent: 0, state: 'down' });
    expect(nested!.lastError).toMatch(/nested\/F1: a symbolic link/);
  });

  it.skipIf(!isRoot())('a full disk: writes fail and are retried from the record where they stopped; nothing torn or doubled', async () => {
    const at = setup((node) => ({ node: { type: 'file', path: `${node}/{container_id}-{stream}.log`, max_size: '64MB' } }));
    const node = join(at.work, 'node');
    mountTmpfs(node, 512 * 1024);
    try {
      // Leaves about 100 KiB: the sink runs out of room partway through a write.
      writeFileSync(join(node, 'filler'), Buffer.alloc(412 * 1024));
      const input = numberedLines(1000, 100, 'full');
      const helper = await start(at);
      for (let i = 0; i < input.length; i += WRITE) await helper.write(input.subarray(i, i + WRITE));
      const failed = await waitFor(() => helper.diagnostics().find((d) => d.msg === 'sink send failed; will retry'), { what: 'a failed send' });
      expect(failed.err).toMatch(/ENOSPC/);
      await sleep(300);
      rmSync(join(node, 'filler'));
      await helper.end();
      const exit = await helper.exited;
      expect(exit.code, helper.stderr()).toBe(0);
      expect(dockerLines([join(node, 'C1-stdout.log')]).lines).toEqual(linesOf(input));
      expect(summaryOf(helper, 'node')).toMatchObject({ linesSent: 1000, linesDropped: 0 });
    } finally {
      unmount(node);
    }
  });

  it('config errors name the key and the value', () => {
    const bad: [Record<string, unknown>, string, RegExp][] = [
      [{ path: 'relative/{container_id}-{stream}.log' }, 'sinks.node.path', /must be an absolute path/],
      [{ path: '/var/log/../etc/{container_id}-{stream}.log' }, 'sinks.node.path', /without \., \.\. or empty components/],
      [{ path: '/var/log/mesos/{container_id}.log' }, 'sinks.node.path', /must contain \{stream\}/],
      [{ path: '/var/log/{nope}/{container_id}-{stream}.log' }, 'sinks.node.path', /unknown placeholder \{nope\}/],
      [{ path: `/var/log/{task_id}{task_name}{executor_id}{container_id}-{stream}` }, 'sinks.node.path', /may reach 301 characters/],
      [{ format: 'json' }, 'sinks.node.format', /must be one of docker_json, cri/],
      [{ max_files: 0 }, 'sinks.node.max_files', /from 1 to 1000/],
      [{ max_size: '1KB' }, 'sinks.node.max_size', /at least 4096/],
      [{ file_mode: 640 }, 'sinks.node.file_mode', /quoted octal mode/],
      [{ file_mode: '0440' }, 'sinks.node.file_mode', /owner read and write/],
      [{ batch: { max_lines: 0 } }, 'sinks.node.batch.max_lines', /from 1/],
    ];
    const dir = makeSandbox().dir;
    for (const [keys, key, why] of bad) {
      const file = join(dir, 'config.yaml');
      writeFileSync(file, JSON.stringify({ sinks: { node: { type: 'file', ...keys } } }));
      const result = spawnSync(join(LAUNCHER_DIR, 'mesos-log-splitter'), ['check-config', file], { encoding: 'utf8', env: agentEnv(), timeout: 20_000 });
      expect(result.status, JSON.stringify(keys)).toBe(1);
      const value = JSON.stringify(Object.values(keys)[0] instanceof Object ? 0 : Object.values(keys)[0]);
      expect(result.stderr).toContain(`${key}: ${value}`);
      expect(result.stderr).toMatch(why);
    }
  });

  it('a batch holding lines of several streams (a shared sink) puts each line in its own stream\'s file, in order', async () => {
    const work = dirname(makeSandbox().dir);
    const metas: StreamMetadata[] = ['C1/stdout', 'C1/stderr', 'C2/stdout'].map((tail) =>
      metadataFromPath(join(work, 'slaves/S1/frameworks/F1/executors/E1/runs', tail)),
    );
    // Lines of the three streams interleaved, runs of 1 to 3 lines each, as a shared sink's batch takes them.
    const lines: { meta: StreamMetadata; text: string }[] = [];
    for (let i = 0; i < 300; i++) {
      const meta = metas[i % 3];
      for (let k = 0; k <= i % 3; k++) lines.push({ meta, text: `${meta.container_id} ${meta.stream} ${i}.${k}` });
    }
    const data = Buffer.from(lines.map((line) => `${line.text}\n`).join(''));
    const starts: number[] = [];
    const stops: number[] = [];
    for (let at = 0, i = 0; i < lines.length; i++, at = stops.at(-1)! + 1) {
      starts.push(at);
      stops.push(at + lines[i].text.length);
    }
    const count = lines.length;
    const batch = new LineBatch(
      data,
      Uint32Array.from(starts),
      Uint32Array.from(stops),
      new Uint8Array(count),
      new Float64Array(count).fill(Date.now()),
      lines.map((line) => line.meta),
      true,
      count,
    );
    const paths = new NodePath('path', `${work}/node/{container_id}-{stream}.log`);
    const runs = new RecordEncoder('docker_json').encode(batch, (meta, time) => paths.render(meta, time));
    expect(runs.length).toBe(300);
    const files = new NodeFiles(paths, { maxSize: 4096, maxFiles: 100, mode: 0o640 }, createDiagnostics({}));
    await files.write(runs, { run: 0, offset: 0 });
    await files.close();
    for (const meta of metas) {
      const log = join(work, `node/${meta.container_id}-${meta.stream}.log`);
      expect(generations(log).length).toBeGreaterThan(1);
      const { lines: written, records } = dockerLines(generations(log));
      expect(written).toEqual(lines.filter((line) => line.meta === meta).map((line) => line.text));
      const whose = records.map((record) => `${(record.attrs as Record<string, string>).container_id} ${record.stream}`);
      expect(new Set(whose)).toEqual(new Set([`${meta.container_id} ${meta.stream}`]));
    }
  });

  it('keeps at most 64 node files open, closes files idle for 30 s, and all of them at close', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    try {
      const work = dirname(makeSandbox().dir);
      const node = join(work, 'node');
      const openHere = (): number =>
        readdirSync('/proc/self/fd').filter((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`).startsWith(node);
          } catch {
            return false;
          }
        }).length;
      const paths = new NodePath('path', `${node}/{container_id}-{stream}.log`);
      const files = new NodeFiles(paths, { maxSize: 1 << 20, maxFiles: 2, mode: 0o640 }, createDiagnostics({}));
      const encoder = new RecordEncoder('cri');
      const writeTo = async (containers: string[]): Promise<void> => {
        const metas = containers.map((c) => metadataFromPath(join(work, 'slaves/S1/frameworks/F1/executors/E1/runs', c, 'stdout')));
        const data = Buffer.from(containers.map((c) => `${c}\n`).join(''));
        const starts = Uint32Array.from(containers.map((_, i) => containers.slice(0, i).join('').length + i));
        const stops = Uint32Array.from(containers.map((c, i) => starts[i] + c.length));
        const n = containers.length;
        const batch = new LineBatch(data, starts, stops, new Uint8Array(n), new Float64Array(n).fill(Date.now()), metas, true, n);
        await files.write(encoder.encode(batch, (meta, time) => paths.render(meta, time)), { run: 0, offset: 0 });
      };
      await writeTo(Array.from({ length: 70 }, (_, i) => `C${i}`));
      expect(openHere()).toBe(64);
      vi.advanceTimersByTime(20_000);
      await writeTo(['C0', 'C1']);
      vi.advanceTimersByTime(30_000);
      // The sweep (every 15 s) at 45 s closed the 62 files last written at 0 s; C0 and C1, written at 20 s, stay.
      // (Date is faked: waitFor's deadline would never come.)
      for (let tries = 0; tries < 500 && openHere() !== 2; tries++) await sleep(10);
      expect(openHere()).toBe(2);
      await files.close();
      expect(openHere()).toBe(0);
      expect(readFileSync(join(node, 'C0-stdout.log'), 'utf8')).toMatch(/^\S+ stdout F C0\n\S+ stdout F C0\n$/);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('file sink in the daemon', () => {
  it('one shared sink for 20 streams: each stream its own file, every line once and in order', async () => {
    const work = dirname(makeSandbox().dir);
    const node = join(work, 'node');
    const config = join(work, 'config.yaml');
    writeFileSync(
      config,
      JSON.stringify({ agent: { enrich: false }, sinks: { node: { type: 'file', path: `${node}/{container_id}-{stream}.log`, max_size: '256KB' } } }),
    );
    const daemon = makeDaemon({ LOG_SPLITTER_CONFIG: config });
    await daemon.start();
    const streams = Array.from({ length: 10 }, (_, k) => ['stdout', 'stderr'].map((stream) => ({ k, stream }))).flat();
    const helpers = await Promise.all(
      streams.map(({ k, stream }) => {
        const log = join(work, `slaves/S1/frameworks/F1/executors/E${k}/runs/C${k}`, stream);
        mkdirSync(dirname(log), { recursive: true });
        return spawnLogger({ log_filename: log }, { env: daemon.shimEnv('daemon') });
      }),
    );
    const LINES = 3000;
    for (let part = 0; part < LINES / 500; part++) {
      await Promise.all(helpers.map((helper, i) => helper.write(numberedLines(500, 100, `s${i}`, part * 500))));
    }
    await Promise.all(helpers.map((helper) => helper.end()));
    for (const helper of helpers) expect((await helper.exited).code).toBe(0);
    const expected = (i: number): string[] => linesOf(numberedLines(LINES, 100, `s${i}`));
    const fileOf = (i: number): string => join(node, `C${streams[i].k}-${streams[i].stream}.log`);
    await waitFor(() => streams.every((_, i) => existsSync(fileOf(i)) && dockerLines(generations(fileOf(i))).lines.length === LINES), {
      timeoutMs: 20_000,
      what: 'every line in the node files',
    });
    for (let i = 0; i < streams.length; i++) {
      const { lines, records } = dockerLines(generations(fileOf(i)));
      expect(lines, fileOf(i)).toEqual(expected(i));
      expect(new Set(records.map((r) => `${(r.attrs as Record<string, string>).container_id} ${r.stream}`))).toEqual(
        new Set([`C${streams[i].k} ${streams[i].stream}`]),
      );
    }
  }, 120_000);
});
