// StreamPipeline in process: a real pipe as the source, the real SandboxWriter, and sinks built from a minimal
// Sink subclass (held or failing on cue), to check routing, match, metadata updates, reloads, drop reports and the
// exit summary.
import { readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type SinkSpec, type SplitterConfig } from '../src/config/config.js';
import type { MatchSpec } from '../src/config/match.js';
import type { LineBatch } from '../src/lines/line-batch.js';
import { metadataFromPath, type StreamMetadata } from '../src/mesos/metadata.js';
import { StreamPipeline, type PipelineSummary } from '../src/pipeline.js';
import { parseDirectives } from '../src/sandbox/directives.js';
import { NativeRotation } from '../src/sandbox/rotation.js';
import { SandboxWriter } from '../src/sandbox/writer.js';
import type { BufferConfig } from '../src/lines/line-buffer.js';
import { Sink, type SinkContext } from '../src/sinks/sink.js';
import type { SinkType } from '../src/sinks/sink-type.js';
import { captureLog } from './helpers/log.js';
import { makePipe } from './helpers/pipe.js';
import { makeSandbox } from './helpers/sandbox.js';
import { sleep, waitFor } from './helpers/wait.js';

interface TestOptions {
  /** Sends wait until the test releases them. */
  held?: boolean;
  /** A marker so two specs differ (a changed sink on reload). */
  generation?: number;
  /** Sends never succeed: they fail when the sink is closed, as a transport whose peer never reads. */
  stuck?: boolean;
}

/** Every sink the test type created, to inspect what each got. */
const created: RecordingSink[] = [];

class RecordingSink extends Sink {
  readonly lines: string[] = [];
  readonly partials: boolean[] = [];
  readonly metas: StreamMetadata[] = [];
  private release: (() => void) | undefined;
  private released: Promise<void>;
  private failStuck: ((err: Error) => void) | undefined;

  constructor(
    readonly options: TestOptions,
    readonly context: SinkContext,
  ) {
    super(context);
    this.released = options.held ? new Promise((resolve) => (this.release = resolve)) : Promise.resolve();
  }

  unhold(): void {
    this.release?.();
  }

  protected async send(batch: LineBatch): Promise<void> {
    if (this.options.stuck) await new Promise<void>((_resolve, reject) => (this.failStuck = reject));
    await this.released;
    for (const record of batch.records) {
      this.lines.push(record.bytes.toString());
      this.partials.push(record.partial);
      this.metas.push(record.meta);
    }
  }

  protected async close(): Promise<void> {
    this.failStuck?.(new Error('closed'));
    this.release?.();
  }
}

const recordingType: SinkType<TestOptions> = {
  type: 'recording',
  parse: () => ({}),
  create(options, context) {
    const sink = new RecordingSink(options, context);
    created.push(sink);
    return sink;
  },
};

const brokenType: SinkType = {
  type: 'broken',
  parse: () => ({}),
  create() {
    throw new Error('cannot start');
  },
};

function spec(name: string, options: TestOptions = {}, match: MatchSpec = {}, buffer?: Partial<BufferConfig>): SinkSpec {
  return {
    name,
    type: recordingType as SinkType,
    options,
    match,
    buffer: { maxBytes: 8 << 20, whenFull: 'drop_oldest', ...buffer },
    sharedMaxBytes: 64 << 20,
  };
}

const config = (sinks: SinkSpec[], extra: Partial<SplitterConfig> = {}): SplitterConfig => ({
  ...DEFAULT_CONFIG,
  source: 'test',
  shutdownTimeoutMs: 1000,
  ...extra,
  sinks,
});

interface Harness {
  pipeline: StreamPipeline;
  done: Promise<PipelineSummary>;
  write(data: string | Buffer): Promise<void>;
  end(): void;
  log: string;
  entries: () => Record<string, unknown>[];
}

/** A pipeline reading the read end of a real pipe; the test writes the other end. */
async function harness(cfg: SplitterConfig, logName = 'stdout', dropReportMs?: number): Promise<Harness> {
  const { dir } = makeSandbox();
  const log = `${dir}/${logName}`;
  const { log: logger, entries } = captureLog();
  const { readFd, writeFd } = await makePipe();
  const source = new Socket({ fd: readFd, readable: true, writable: false });
  const writer = new Socket({ fd: writeFd, readable: false, writable: true });
  const directives = parseDirectives(undefined);
  if (directives.kind !== 'native') throw new Error('expected native rotation');
  const sandbox = new SandboxWriter({
    path: log,
    maxSize: 64 << 20,
    rotation: new NativeRotation(log, directives.policy, logger),
    log: logger,
  });
  const pipeline = new StreamPipeline({ source, sandbox, meta: metadataFromPath(log), config: cfg, log: logger, dropReportMs });
  return {
    pipeline,
    done: pipeline.run(),
    write: (data) => new Promise((resolve, reject) => writer.write(data, (err) => (err ? reject(err) : resolve()))),
    end: () => writer.end(),
    log,
    entries,
  };
}

const numbered = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `line ${from + i}`);
const text = (lines: string[]): string => lines.map((l) => `${l}\n`).join('');

afterEach(() => {
  created.length = 0;
});

describe('StreamPipeline', () => {
  it('tees: the sandbox gets the exact bytes, each sink every line, and the exit summary adds up', async () => {
    const h = await harness(config([spec('a'), spec('b')]));
    const input = Buffer.concat([Buffer.from(text(numbered(0, 5000))), Buffer.from([0xff, 0x0d, 0x0a]), Buffer.from('last')]);
    await h.write(input);
    h.end();
    const summary = await h.done;
    expect(readFileSync(h.log).equals(input)).toBe(true);
    expect(summary.sandbox.bytesWritten).toBe(input.length);
    for (const sink of created) {
      expect(sink.lines.slice(0, 5000)).toEqual(numbered(0, 5000));
      expect(sink.lines.slice(5000)).toEqual(['\uFFFD', 'last']);
    }
    expect(summary.sinks.map((s) => s.sink)).toEqual(['a', 'b']);
    for (const s of summary.sinks) {
      expect(s).toMatchObject({ type: 'recording', linesIn: 5002, linesSent: 5002, linesDropped: 0, bufferedLines: 0, state: 'up' });
    }
    const logged = h.entries().filter((e) => e.msg === 'sink summary');
    expect(logged.map((e) => e.sink)).toEqual(['a', 'b']);
  });

  it('routes by match: stream and ids', async () => {
    const h = await harness(
      config([spec('out', {}, { stream: ['stdout'] }), spec('err', {}, { stream: ['stderr'] }), spec('web', {}, { executor_id: ['web-*'] })]),
      'stderr',
    );
    await h.write(text(['x', 'y']));
    h.end();
    await h.done;
    const [out, err, web] = created;
    expect(out.lines).toEqual([]);
    expect(err.lines).toEqual(['x', 'y']);
    // The test sandbox is outside a Mesos layout: no executor id, so an id match takes nothing.
    expect(web.lines).toEqual([]);
  });

  it('new metadata applies to the lines framed after it, and can start a match', async () => {
    const h = await harness(config([spec('all'), spec('task', {}, { task_id: ['web.*'] })]));
    await h.write(text(['before']));
    await waitFor(() => created[0].lines.length === 1, { what: 'the first line' });
    const enriched: StreamMetadata = { ...metadataFromPath(h.log), task_id: 'web.1', task_labels: { tier: 'x' } };
    h.pipeline.updateMetadata(enriched);
    await h.write(text(['after']));
    h.end();
    await h.done;
    const [all, task] = created;
    expect(all.lines).toEqual(['before', 'after']);
    expect(all.metas[0].task_id).toBeUndefined();
    expect(all.metas[1]).toBe(enriched);
    expect(task.lines).toEqual(['after']);
    expect(all.context.meta?.hostname).toBe(hostname());
  });

  it('a sink that cannot start is skipped and logged; the others run', async () => {
    const broken: SinkSpec = { ...spec('broken'), type: brokenType };
    const h = await harness(config([broken, spec('ok')]));
    await h.write(text(['one']));
    h.end();
    const summary = await h.done;
    expect(created.map((s) => s.name)).toEqual(['ok']);
    expect(created[0].lines).toEqual(['one']);
    expect(summary.sinks.map((s) => s.sink)).toEqual(['ok']);
    expect(h.entries().find((e) => e.msg === 'sink could not start; skipping it')).toMatchObject({ sink: 'broken', err: 'cannot start' });
  });

  it('reconfigure: an unchanged sink keeps running with its buffer; a changed one is replaced, and the old one delivers what it holds', async () => {
    const h = await harness(config([spec('same'), spec('changing', { held: true, generation: 1 })]));
    await h.write(text(numbered(0, 100)));
    await waitFor(() => created[0].lines.length === 100, { what: 'the first lines' });
    const [same, oldChanging] = created;
    expect(oldChanging.stats.bufferedLines).toBe(100);
    h.pipeline.reconfigure(config([spec('same'), spec('changing', { generation: 2 })]));
    expect(created).toHaveLength(3);
    const newChanging = created[2];
    await h.write(text(numbered(100, 200)));
    h.end();
    const summary = await h.done;
    expect(same.lines).toEqual(numbered(0, 200));
    // The retired sink was released by its stop() and delivered the lines it held.
    expect(oldChanging.lines).toEqual(numbered(0, 100));
    expect(newChanging.lines).toEqual(numbered(100, 200));
    expect(summary.sinks.map((s) => [s.sink, s.linesIn, s.linesSent])).toEqual([
      ['changing', 100, 100],
      ['same', 200, 200],
      ['changing', 100, 100],
    ]);
  });

  it('reconfigure to no sinks and back: a sink added mid-line gets that line whole; a retired one drops its unterminated start', async () => {
    const h = await harness(config([spec('s')], { lines: { maxLineBytes: 65536, partialFlushMs: 60_000 } }));
    await h.write('one\ntw');
    await waitFor(() => created[0].lines.length === 1, { what: 'the first line' });
    h.pipeline.reconfigure(config([], { lines: { maxLineBytes: 65536, partialFlushMs: 60_000 } }));
    await h.write('o\nthr');
    await sleep(50);
    h.pipeline.reconfigure(config([spec('s')], { lines: { maxLineBytes: 65536, partialFlushMs: 60_000 } }));
    await h.write('ee\nfour\n');
    h.end();
    const summary = await h.done;
    // The retired sink never sees where 'tw' ends: it drops it. The new sink joins mid-line and is given the
    // line so far ('thr'), so 'three' arrives whole.
    expect(created.map((s) => s.lines)).toEqual([['one'], ['three', 'four']]);
    expect(created.map((s) => s.partials)).toEqual([[false], [false, false]]);
    expect(summary.sinks.map((s) => [s.linesIn, s.linesSent, s.bytesIn, s.bytesSent, s.bytesDropped])).toEqual([
      [1, 1, 6, 4, 2],
      [2, 2, 11, 11, 0],
    ]);
    // Not the buffer's doing: the retired sink reports why it dropped those 2 bytes.
    expect(summary.sinks.map((s) => s.droppedBy)).toEqual([{ detached: { lines: 0, bytes: 2 } }, {}]);
  });

  it('a sink changed while a line longer than max_line_bytes is open: the new one skips that line, counted detached, and the generations add up to the stream', async () => {
    const lines = { maxLineBytes: 100, partialFlushMs: 60_000 };
    const h = await harness(config([spec('s', { generation: 1 })], { lines }));
    await h.write('x'.repeat(300));
    await waitFor(() => created[0].stats.bufferedBytes > 0, { what: 'the long line taken' });
    h.pipeline.reconfigure(config([spec('s', { generation: 2 })], { lines }));
    await h.write(`${'y'.repeat(50)}\nz\n`);
    h.end();
    const summary = await h.done;
    // The old generation sent the line's first pieces and dropped the rest it held; the new one was given none of it.
    expect(created.map((s) => s.lines)).toEqual([['x'.repeat(100), 'x'.repeat(100)], ['z']]);
    expect(summary.sinks.map((s) => [s.linesIn, s.bytesIn, s.droppedBy])).toEqual([
      [0, 300, { detached: { lines: 0, bytes: 100 } }],
      [2, 53, { detached: { lines: 1, bytes: 51 } }],
    ]);
  });

  it('reports drops periodically while they happen, not otherwise', async () => {
    const h = await harness(config([spec('stuck', { held: true }, {}, { maxBytes: 4096 })]), 'stdout', 50);
    // 1000 lines are ~8.9 KB of stream bytes: more than the 4096 B buffer holds.
    await h.write(text(numbered(0, 1000)));
    await waitFor(() => h.entries().some((e) => e.msg === 'sink is dropping lines'), { what: 'a drop report' });
    const reports = (): Record<string, unknown>[] => h.entries().filter((e) => e.msg === 'sink is dropping lines');
    expect(reports()[0]).toMatchObject({ sink: 'stuck', level: 40 });
    expect((reports()[0].droppedBy as Record<string, { lines: number }>).buffer_full.lines).toBeGreaterThan(0);
    const count = reports().length;
    // No new drops: no new reports.
    await sleep(200);
    expect(reports()).toHaveLength(count);
    created[0].unhold();
    h.end();
    const [summary] = (await h.done).sinks;
    expect((summary.linesIn as number) - (summary.linesDropped as number)).toBe(summary.linesSent);
  });

  it('at EOF a sink that cannot deliver is given up at shutdown_timeout_ms; its lines stay counted as buffered', async () => {
    const h = await harness(config([spec('stuck', { stuck: true })], { shutdownTimeoutMs: 200 }));
    await h.write(text(numbered(0, 10)));
    await waitFor(() => created[0]?.stats.bufferedLines === 10, { what: 'the lines to be buffered' });
    const started = Date.now();
    h.end();
    const [summary] = (await h.done).sinks;
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1000);
    expect(summary).toMatchObject({ linesIn: 10, linesSent: 0, linesDropped: 0, bufferedLines: 10, state: 'down' });
  });
});
