import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { SinkSpec, SplitterConfig } from '../config/config.js';
import type { Logger } from '../diagnostics.js';
import type { Sink, SinkHealth, SinkStats } from './sink.js';

/** A shared sink's figures over all the streams it serves (status and metrics). */
export type SharedSinkReport = { sink: string; type: string; streams: number; heldBytes: number; budgetBytes: number } & SinkStats &
  SinkHealth;

/** Identity of a spec: a reload that changes any of it replaces the sink. */
export const specKey = (spec: SinkSpec): string =>
  JSON.stringify([spec.type.type, spec.options, spec.match, spec.buffer, spec.sharedMaxBytes, spec.disk]);

interface Output {
  spec: SinkSpec;
  key: string;
  sink: Sink;
}

/**
 * The shared sinks of one process (a daemon worker): each configured sink of a shared type runs once, and every
 * stream attaches its own queue to it (StreamPipeline). Per-stream types (exec) are not here: each stream runs its own.
 */
export class SinkSet {
  private outputs = new Map<string, Output>();
  /** Replaced or removed sinks delivering what they hold. */
  private readonly retiring = new Set<Promise<void>>();

  constructor(
    private readonly log: Logger,
    config: SplitterConfig,
  ) {
    this.start(config.sinks);
  }

  /** The running shared sink for `spec`; undefined for a per-stream type, or one that could not start. */
  outputFor(spec: SinkSpec): Sink | undefined {
    const output = this.outputs.get(spec.name);
    return output?.key === specKey(spec) ? output.sink : undefined;
  }

  /**
   * Applies a reloaded config: unchanged sinks keep running; new and changed ones start. Returns a function that
   * retires the changed and removed ones: call it once every stream has detached from them (StreamPipeline
   * .reconfigure), and they deliver what they hold, for up to the shutdown timeout.
   */
  reconfigure(config: SplitterConfig): () => void {
    const retired: Output[] = [];
    const next = new Map<string, Output>();
    const keys = new Map(config.sinks.map((spec) => [spec.name, specKey(spec)]));
    for (const [name, output] of this.outputs) {
      if (keys.get(name) === output.key) next.set(name, output);
      else retired.push(output);
    }
    this.outputs = next;
    this.start(config.sinks.filter((spec) => !next.has(spec.name)));
    return () => {
      for (const output of retired) this.retire(output, Date.now() + config.shutdownTimeoutMs);
    };
  }

  /** Stops every sink: each delivers what its queues hold until `deadline`. */
  async stop(deadline: number): Promise<void> {
    const outputs = [...this.outputs.values()];
    this.outputs.clear();
    for (const output of outputs) this.retire(output, deadline);
    await Promise.all([...this.retiring]);
  }

  reports(): SharedSinkReport[] {
    return [...this.outputs.values()].map(({ spec, sink }) => ({
      sink: spec.name,
      type: spec.type.type,
      streams: sink.streams,
      heldBytes: sink.heldBytes(),
      budgetBytes: sink.budgetBytes,
      ...sink.stats,
      ...sink.status(),
    }));
  }

  private start(specs: SinkSpec[]): void {
    for (const spec of specs) {
      if (spec.type.perStream) continue;
      try {
        const sink = spec.type.create(spec.options, {
          name: spec.name,
          buffer: { ...spec.buffer, maxBytes: spec.sharedMaxBytes },
          // One spool per sink per worker (task user): a spool directory belongs to one process.
          ...(spec.disk === undefined ? {} : { spool: { dir: join(spec.disk.path, userInfo().username), maxBytes: spec.disk.maxBytes, whenFull: spec.buffer.whenFull } }),
          log: this.log,
        });
        sink.start();
        this.outputs.set(spec.name, { spec, key: specKey(spec), sink });
      } catch (err) {
        this.log.error({ sink: spec.name, err: (err as Error).message }, 'sink could not start; skipping it');
      }
    }
  }

  private retire(output: Output, deadline: number): void {
    const stopped = output.sink.stop(deadline).then(() => {
      this.retiring.delete(stopped);
      this.log.info({ sink: output.spec.name, type: output.spec.type.type, ...output.sink.stats, ...output.sink.status() }, 'shared sink stopped');
    });
    this.retiring.add(stopped);
  }
}
