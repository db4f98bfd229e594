import type { SinkReport } from '../pipeline.js';
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

/** A configured sink over all its streams (each stream runs its own instance in this phase). */
export interface SinkStatus {
  sink: string;
  type: string;
  /** down if any stream's instance is down, else starting if any is, else up. */
  health: 'starting' | 'up' | 'down';
  streams: { up: number; down: number; starting: number };
  last_error?: string;
  sent_lines: number;
  dropped_lines: number;
  buffered_lines: number;
  buffered_bytes: number;
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
    sinks: summarizeSinks(streams),
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

function summarizeSinks(streams: StreamStatus[]): SinkStatus[] {
  const sinks = new Map<string, SinkStatus>();
  for (const stream of streams) {
    for (const one of stream.sinks) {
      let sink = sinks.get(one.sink);
      if (sink === undefined) {
        sink = { sink: one.sink, type: one.type, health: 'up', streams: { up: 0, down: 0, starting: 0 }, sent_lines: 0, dropped_lines: 0, buffered_lines: 0, buffered_bytes: 0 };
        sinks.set(one.sink, sink);
      }
      sink.streams[one.health]++;
      if (one.last_error !== undefined) sink.last_error = one.last_error;
      sink.sent_lines += one.sent_lines;
      sink.dropped_lines += one.dropped_lines;
      sink.buffered_lines += one.buffered_lines;
      sink.buffered_bytes += one.buffered_bytes;
    }
  }
  for (const sink of sinks.values()) sink.health = sink.streams.down > 0 ? 'down' : sink.streams.starting > 0 ? 'starting' : 'up';
  return [...sinks.values()].sort((a, b) => a.sink.localeCompare(b.sink));
}
