import type { Readable } from 'node:stream';
import type { SplitterConfig, SinkSpec } from './config/config.js';
import { compileMatch } from './config/match.js';
import type { Logger } from './diagnostics.js';
import { OpenLine } from './lines/open-line.js';
import type { StreamMetadata } from './mesos/metadata.js';
import type { SandboxStats, SandboxWriter } from './sandbox/writer.js';
import type { Sink, SinkHealth, SinkStats } from './sinks/sink.js';

export interface StreamPipelineOptions {
  /** The task's stdout or stderr: the read end of the pipe the agent hands over. */
  source: Readable;
  sandbox: SandboxWriter;
  meta: StreamMetadata;
  config: SplitterConfig;
  log: Logger;
  /** How often drops are reported while they happen. */
  dropReportMs?: number;
}

interface Route {
  spec: SinkSpec;
  /** Identity of the spec, to keep a running sink across a reload that did not change it. */
  key: string;
  sink: Sink;
  matches: (meta: StreamMetadata) => boolean;
  lastMeta?: StreamMetadata;
  lastMatch?: boolean;
  /** The sink did not get the previous chunk: it may be joining in the middle of a line. */
  gap: boolean;
  reportedDrops: number;
}

/** A running sink of one stream: its counters and health. */
export type SinkReport = { sink: string; type: string } & SinkStats & SinkHealth;

export interface PipelineSummary {
  sandbox: SandboxStats;
  sinks: Record<string, unknown>[];
}

const specKey = (spec: SinkSpec): string =>
  JSON.stringify([spec.type.type, spec.options, spec.match, spec.buffer]);

/**
 * One stream of one container: source -> sandbox files, and a tee -> sinks. Holds no process-wide state, so one
 * process can host many. The source is read only as fast as the sandbox takes it; sinks never slow it down: each
 * copies the chunk into its own bounded buffer and cuts lines from it when it sends.
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
    this.startSinks(options.config.sinks);
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
   * Applies a reloaded config. Unchanged sinks keep running with their buffers; a removed or changed sink stops
   * taking lines and keeps delivering what it holds, in the background, for up to the shutdown timeout. Returns
   * false once the stream has ended: no line is left to route, and the sinks being stopped must keep their summaries.
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
      if (route === undefined) added.push(spec);
      else {
        route.sink.reconfigureLines(config.lines);
        next.push(route);
        keep.delete(spec.name + route.key);
      }
    }
    for (const route of keep.values()) this.retire(route);
    this.routes = next;
    this.startSinks(added);
    return true;
  }

  private startSinks(specs: SinkSpec[]): void {
    for (const spec of specs) {
      try {
        const sink = spec.type.create(spec.options, {
          name: spec.name,
          buffer: spec.buffer,
          lines: this.config.lines,
          log: this.options.log,
          meta: this.meta,
        });
        sink.start();
        this.routes.push({ spec, key: specKey(spec), sink, matches: compileMatch(spec.match), gap: true, reportedDrops: 0 });
      } catch (err) {
        this.options.log.error({ sink: spec.name, err: (err as Error).message }, 'sink could not start; skipping it');
      }
    }
  }

  /** The chunk may be borrowed (pipe-source.ts): each sink copies what it keeps. */
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
      if (route.gap) route.sink.rejoin(this.openLine.current(), time, meta);
      route.gap = false;
      route.sink.append(chunk, time, meta);
    }
  }

  private retire(route: Route): void {
    route.sink.detach();
    const stopped = route.sink.stop(Date.now() + this.config.shutdownTimeoutMs).then(() => this.summarize(route));
    this.retired.add(stopped);
    void stopped.then((summary) => {
      this.retired.delete(stopped);
      this.retiredSummaries.push(summary);
    });
  }

  private async shutdown(): Promise<PipelineSummary> {
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    await Promise.all([
      this.options.sandbox.end(),
      ...this.routes.map((route) => route.sink.stop(deadline)),
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
    return { sink: route.spec.name, type: route.spec.type.type, ...route.sink.stats, ...route.sink.status() };
  }

  private reportDrops(): void {
    for (const route of this.routes) {
      const dropped = route.sink.droppedLines();
      if (dropped === route.reportedDrops) continue;
      route.reportedDrops = dropped;
      this.options.log.warn(this.summarize(route), 'sink is dropping lines');
    }
  }
}
