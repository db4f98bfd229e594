import type { Readable } from 'node:stream';
import type { SplitterConfig, SinkSpec } from './config/config.js';
import { compileMatch } from './config/match.js';
import type { Logger } from './diagnostics.js';
import { OpenLine } from './lines/open-line.js';
import type { StreamMetadata } from './mesos/metadata.js';
import type { SandboxStats, SandboxWriter } from './sandbox/writer.js';
import type { Sink, SinkHealth, SinkStats } from './sinks/sink.js';
import { specKey, type SinkSet } from './sinks/sink-set.js';
import type { StreamQueue } from './sinks/stream-queue.js';

export interface StreamPipelineOptions {
  /** The task's stdout or stderr: the read end of the pipe the agent hands over. */
  source: Readable;
  sandbox: SandboxWriter;
  meta: StreamMetadata;
  config: SplitterConfig;
  log: Logger;
  /**
   * The process's shared sinks (a daemon worker): the stream attaches a queue to each. Without, the stream runs
   * every sink itself (the standalone helper). Per-stream types (exec) always run per stream.
   */
  outputs?: SinkSet;
  /** How often drops are reported while they happen. */
  dropReportMs?: number;
}

interface Route {
  spec: SinkSpec;
  /** Identity of the spec, to keep a running sink across a reload that did not change it. */
  key: string;
  sink: Sink;
  /** This stream's lines waiting for the sink. */
  queue: StreamQueue;
  /** The sink is this stream's own: it stops when the stream ends. */
  own: boolean;
  matches: (meta: StreamMetadata) => boolean;
  lastMeta?: StreamMetadata;
  lastMatch?: boolean;
  /** The sink did not get the previous chunk: it may be joining in the middle of a line. */
  gap: boolean;
  reportedDrops: number;
}

/** A sink of one stream: the stream's counters, and the sink's transport figures and health. */
export type SinkReport = { sink: string; type: string } & SinkStats & SinkHealth;

export interface PipelineSummary {
  sandbox: SandboxStats;
  sinks: Record<string, unknown>[];
}

/**
 * One stream of one container: source -> sandbox files, and a tee -> sinks. Holds no process-wide state, so one
 * process can host many. The source is read only as fast as the sandbox takes it; sinks never slow it down: the
 * stream copies each chunk into its own bounded queue per sink, and the sink cuts lines from it when it sends.
 */
export class StreamPipeline {
  private meta: StreamMetadata;
  private config: SplitterConfig;
  private routes: Route[] = [];
  private readonly retired = new Set<Promise<Record<string, unknown>>>();
  private readonly retiredSummaries: Record<string, unknown>[] = [];
  /** The stream ended: the sinks are delivering what they hold, and each will be summarized as it is. */
  private ending = false;
  /** Ends run(): set while it runs. */
  private finishRun?: () => void;
  /** What a sink joining mid-line is given first. */
  private readonly openLine: OpenLine;

  constructor(private readonly options: StreamPipelineOptions) {
    this.meta = options.meta;
    this.config = options.config;
    this.openLine = new OpenLine(options.config.lines.maxLineBytes);
    this.startRoutes(options.config.sinks);
  }

  /** Resolves when the source has ended, the sandbox is flushed and the sinks had their shutdown time. */
  run(): Promise<PipelineSummary> {
    const { source, sandbox, log } = this.options;
    const dropReport = setInterval(() => this.reportDrops(), this.options.dropReportMs ?? 10_000);
    dropReport.unref();
    return new Promise((resolve) => {
      const finish = (): void => {
        if (this.ending) return;
        this.ending = true;
        clearInterval(dropReport);
        void this.shutdown().then(resolve);
      };
      this.finishRun = finish;
      // Once stopped, what is left in the pipe stays there for the next reader.
      sandbox.on('drain', () => {
        if (!this.ending) source.resume();
      });
      source.on('data', (chunk: Buffer) => {
        if (!sandbox.write(chunk)) source.pause();
        if (this.routes.length > 0) this.dispatch(chunk);
        this.openLine.track(chunk);
      });
      source.once('end', finish);
      source.once('error', (err) => {
        log.error({ err: err.message }, 'reading the stream failed; treating it as ended');
        finish();
      });
    });
  }

  /**
   * Stops reading the source without consuming the rest: a daemon worker that is told to go (or loses its daemon)
   * leaves the unread bytes in the pipe for its successor. run() then finishes as at EOF.
   */
  stopReading(): void {
    this.options.source.pause();
    this.finishRun?.();
  }

  /** The source ended: the sinks are delivering what they hold. */
  get ended(): boolean {
    return this.ending;
  }

  /** The running sinks' counters and health (the daemon's status and metrics). */
  sinkReports(): SinkReport[] {
    return this.routes.map((route) => this.report(route));
  }

  /** New metadata (agent enrichment) applies to bytes arriving from now on. */
  updateMetadata(meta: StreamMetadata): void {
    this.meta = meta;
  }

  /**
   * Applies a reloaded config (after the shared sinks, if any, applied it). Unchanged sinks keep running with their
   * queues; a removed or changed sink stops taking this stream's lines and keeps delivering what it holds, in the
   * background, for up to the shutdown timeout. Returns false once the stream has ended: no line is left to route,
   * and the sinks being stopped must keep their summaries.
   */
  reconfigure(config: SplitterConfig): boolean {
    if (this.ending) return false;
    this.config = config;
    this.openLine.reconfigure(config.lines.maxLineBytes);
    const keep = new Map(this.routes.map((route) => [route.spec.name + route.key, route]));
    const next: Route[] = [];
    const added: SinkSpec[] = [];
    for (const spec of config.sinks) {
      const route = keep.get(spec.name + specKey(spec));
      if (route === undefined || !(route.own || this.options.outputs?.outputFor(spec) === route.sink)) added.push(spec);
      else {
        route.queue.reconfigureLines(config.lines);
        next.push(route);
        keep.delete(spec.name + route.key);
      }
    }
    for (const route of keep.values()) this.retire(route);
    this.routes = next;
    this.startRoutes(added);
    return true;
  }

  private startRoutes(specs: SinkSpec[]): void {
    for (const spec of specs) {
      const sink = this.sinkFor(spec);
      if (sink === undefined) continue;
      const own = sink !== this.options.outputs?.outputFor(spec);
      const queue = sink.attach(this.config.lines);
      this.routes.push({ spec, key: specKey(spec), sink, queue, own, matches: compileMatch(spec.match), gap: true, reportedDrops: 0 });
    }
  }

  /** The process's shared sink for `spec`, or one of this stream's own. */
  private sinkFor(spec: SinkSpec): Sink | undefined {
    const { outputs, log } = this.options;
    // A shared sink that could not start was logged once by the set, not again per stream.
    if (outputs !== undefined && !spec.type.perStream) return outputs.outputFor(spec);
    try {
      const sink = spec.type.create(spec.options, { name: spec.name, buffer: spec.buffer, log, meta: this.meta });
      sink.start();
      return sink;
    } catch (err) {
      log.error({ sink: spec.name, err: (err as Error).message }, 'sink could not start; skipping it');
      return undefined;
    }
  }

  /** The chunk may be borrowed (pipe-source.ts): each queue copies what it keeps. */
  private dispatch(chunk: Buffer): void {
    const time = Date.now();
    const meta = this.meta;
    for (const route of this.routes) {
      if (route.lastMeta !== meta) {
        route.lastMeta = meta;
        route.lastMatch = route.matches(meta);
      }
      if (!route.lastMatch) {
        route.gap = true;
        continue;
      }
      if (route.gap) route.queue.rejoin(this.openLine.current(), time, meta);
      route.gap = false;
      route.queue.append(chunk, time, meta);
    }
  }

  private retire(route: Route): void {
    route.queue.detach();
    const stopped = this.finishRoute(route, Date.now() + this.config.shutdownTimeoutMs).then(() => this.summarize(route));
    this.retired.add(stopped);
    void stopped.then((summary) => {
      this.retired.delete(stopped);
      this.retiredSummaries.push(summary);
    });
  }

  /** The stream is done with the sink: it delivers the stream's lines until `deadline`; the stream's own sink then stops. */
  private finishRoute(route: Route, deadline: number): Promise<void> {
    return route.own ? route.sink.stop(deadline) : route.queue.finish(deadline);
  }

  private async shutdown(): Promise<PipelineSummary> {
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    await Promise.all([
      this.options.sandbox.end(),
      ...this.routes.map((route) => this.finishRoute(route, deadline)),
      ...this.retired,
    ]);
    const sinks = [...this.retiredSummaries, ...this.routes.map((route) => this.summarize(route))];
    for (const summary of sinks) this.options.log.info(summary, 'sink summary');
    return { sandbox: this.options.sandbox.stats, sinks };
  }

  private summarize(route: Route): Record<string, unknown> {
    return { ...this.report(route) };
  }

  private report(route: Route): SinkReport {
    return { sink: route.spec.name, type: route.spec.type.type, ...route.queue.stats, ...route.sink.transportStats(), ...route.sink.status() };
  }

  private reportDrops(): void {
    for (const route of this.routes) {
      const dropped = route.queue.droppedLines();
      if (dropped === route.reportedDrops) continue;
      route.reportedDrops = dropped;
      this.options.log.warn(this.summarize(route), 'sink is dropping lines');
    }
  }
}
