import type { SinkReport } from '../pipeline.js';
import type { SharedSinkReport } from '../sinks/sink-set.js';
import type { WorkerReport } from './worker-pool.js';

/** One sink of one stream, as `status --json` shows it. */
export interface StreamSinkStatus {
  sink: string;
  type: string;
  health: 'starting' | 'up' | 'down';
  last_error?: string;
  sent_lines: number;
  sent_bytes: number;
  dropped_lines: number;
  dropped_bytes: number;
  /** Only reasons that dropped something: buffer_full, detached, replay_overflow, rejected. */
  dropped_by: Record<string, { lines: number; bytes: number }>;
  buffered_lines: number;
  buffered_bytes: number;
}

export type StreamState = 'starting' | 'running' | 'ending' | 'waiting for its worker' | 'worker not answering';

export interface StreamStatus {
  log_filename: string;
  stream: 'stdout' | 'stderr';
  /** The --user the stream runs as; root without one, as the original runs then. */
  user: string;
  agent_id?: string;
  framework_id?: string;
  executor_id?: string;
  container_id?: string;
  task_id?: string;
  state: StreamState;
  /** connected, or away (the shim was killed or is reconnecting). */
  shim: 'connected' | 'away';
  /** Absent while the worker has no figures (starting, or not answering). */
  bytes_in?: number;
  rotations?: number;
  sinks: StreamSinkStatus[];
}

/**
 * A configured sink over all its streams: a shared sink runs once per worker (its counters include streams that
 * ended); a per-stream type (exec) once per stream (its counters are those of the streams now served).
 */
export interface SinkStatus {
  sink: string;
  type: string;
  /** down if any instance is down, else starting if any is, else up. */
  health: 'starting' | 'up' | 'down';
  /** The streams it serves, by the health of the instance serving each. */
  streams: { up: number; down: number; starting: number };
  last_error?: string;
  sent_lines: number;
  sent_bytes: number;
  dropped_lines: number;
  /** Only reasons that dropped something. */
  dropped_by: Record<string, { lines: number; bytes: number }>;
  buffered_lines: number;
  buffered_bytes: number;
  /** A shared sink: what it holds against its budget (its queues, batch memory, replay window), and the budget. */
  held_bytes?: number;
  budget_bytes?: number;
}

export interface WorkerStatus {
  user: string;
  pid?: number;
  state: 'ready' | 'starting' | 'not answering';
  streams: number;
}

export interface DaemonStatus {
  daemon: { pid: number; socket: string; metrics_listen?: string };
  workers: WorkerStatus[];
  streams: StreamStatus[];
  sinks: SinkStatus[];
}

/** Merges what the daemon knows of each stream (flags, metadata, shim) with what its worker reported. */
export function buildStatus(daemon: DaemonStatus['daemon'], workers: WorkerReport[]): DaemonStatus {
  const streams: StreamStatus[] = [];
  for (const worker of workers) {
    for (const { stream, report } of worker.streams) {
      const meta = stream.meta;
      const base = {
        log_filename: stream.flags.logFilename,
        stream: meta.stream,
        user: meta.user ?? 'root',
        ...pick(meta, ['agent_id', 'framework_id', 'executor_id', 'container_id', 'task_id'] as const),
        shim: stream.shim === undefined ? ('away' as const) : ('connected' as const),
      };
      if (report === undefined || report.state === 'starting') {
        const state: StreamState =
          report !== undefined ? 'starting' : worker.state === 'not answering' ? 'worker not answering' : 'waiting for its worker';
        streams.push({ ...base, state, sinks: [] });
      } else {
        streams.push({ ...base, state: report.state, bytes_in: report.bytesIn, rotations: report.rotations, sinks: report.sinks.map(sinkOfStream) });
      }
    }
  }
  streams.sort((a, b) => a.log_filename.localeCompare(b.log_filename));
  return {
    daemon,
    workers: workers.map((worker) => ({
      user: worker.user ?? 'root',
      ...(worker.pid === undefined ? {} : { pid: worker.pid }),
      state: worker.state,
      streams: worker.streams.length,
    })),
    streams,
    sinks: summarizeSinks(streams, workers.flatMap((worker) => worker.sinks ?? [])),
  };
}

function pick<K extends string>(meta: Partial<Record<K, string>>, keys: readonly K[]): Partial<Record<K, string>> {
  return Object.fromEntries(keys.filter((key) => meta[key] !== undefined).map((key) => [key, meta[key]])) as Partial<Record<K, string>>;
}

function sinkOfStream(report: SinkReport): StreamSinkStatus {
  return {
    sink: report.sink,
    type: report.type,
    health: report.state,
    ...(report.state === 'down' && report.lastError !== undefined ? { last_error: report.lastError } : {}),
    sent_lines: report.linesSent,
    sent_bytes: report.bytesSent,
    dropped_lines: report.linesDropped,
    dropped_bytes: report.bytesDropped,
    dropped_by: report.droppedBy as Record<string, { lines: number; bytes: number }>,
    buffered_lines: report.bufferedLines,
    buffered_bytes: report.bufferedBytes,
  };
}

function summarizeSinks(streams: StreamStatus[], shared: SharedSinkReport[]): SinkStatus[] {
  const sinks = new Map<string, SinkStatus>();
  const sinkNamed = (name: string, type: string): SinkStatus => {
    let sink = sinks.get(name);
    if (sink === undefined) {
      sink = { sink: name, type, health: 'up', streams: { up: 0, down: 0, starting: 0 }, sent_lines: 0, sent_bytes: 0, dropped_lines: 0, dropped_by: {}, buffered_lines: 0, buffered_bytes: 0 };
      sinks.set(name, sink);
    }
    return sink;
  };
  const health = new Map<string, SinkStatus['health'][]>();
  const sharedNames = new Set(shared.map((one) => one.sink));
  for (const one of shared) {
    const sink = sinkNamed(one.sink, one.type);
    health.set(one.sink, [...(health.get(one.sink) ?? []), one.state]);
    if (one.state === 'down' && one.lastError !== undefined) sink.last_error = one.lastError;
    addCounts(sink, { sent_lines: one.linesSent, sent_bytes: one.bytesSent, dropped_lines: one.linesDropped, buffered_lines: one.bufferedLines, buffered_bytes: one.bufferedBytes }, one.droppedBy);
    sink.held_bytes = (sink.held_bytes ?? 0) + one.heldBytes;
    sink.budget_bytes = (sink.budget_bytes ?? 0) + one.budgetBytes;
  }
  for (const stream of streams) {
    for (const one of stream.sinks) {
      const sink = sinkNamed(one.sink, one.type);
      sink.streams[one.health]++;
      if (sharedNames.has(one.sink)) continue;
      if (one.last_error !== undefined) sink.last_error = one.last_error;
      addCounts(sink, one, one.dropped_by);
    }
  }
  for (const sink of sinks.values()) {
    const states = health.get(sink.sink) ?? [];
    const down = sink.streams.down > 0 || states.includes('down');
    sink.health = down ? 'down' : sink.streams.starting > 0 || states.includes('starting') ? 'starting' : 'up';
  }
  return [...sinks.values()].sort((a, b) => a.sink.localeCompare(b.sink));
}

function addCounts(
  sink: SinkStatus,
  counts: Pick<SinkStatus, 'sent_lines' | 'sent_bytes' | 'dropped_lines' | 'buffered_lines' | 'buffered_bytes'>,
  droppedBy: Partial<Record<string, { lines: number; bytes: number }>>,
): void {
  sink.sent_lines += counts.sent_lines;
  sink.sent_bytes += counts.sent_bytes;
  sink.dropped_lines += counts.dropped_lines;
  sink.buffered_lines += counts.buffered_lines;
  sink.buffered_bytes += counts.buffered_bytes;
  for (const [reason, dropped] of Object.entries(droppedBy)) {
    if (dropped === undefined) continue;
    const total = (sink.dropped_by[reason] ??= { lines: 0, bytes: 0 });
    total.lines += dropped.lines;
    total.bytes += dropped.bytes;
  }
}
