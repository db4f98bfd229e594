import type { DaemonStatus, StreamState, StreamStatus, WorkerStatus } from './status.js';

/** Prometheus text exposition format 0.0.4. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * A stream's labels: the ids its path gives at once. Not the task id: it arrives later from the agent and would
 * start a second series for the same stream.
 */
const STREAM_LABELS = ['agent_id', 'framework_id', 'executor_id', 'container_id', 'stream'] as const;

const FAMILIES = {
  streams: ['gauge', 'Streams the daemon serves, by state.'],
  workers: ['gauge', 'Worker processes (one per task user), by state.'],
  stream_bytes_in_total: ['counter', 'Bytes read from the task stream.'],
  stream_rotations_total: ['counter', 'Sandbox file rotations.'],
  stream_sink_sent_lines_total: ['counter', "Lines of the stream the sink delivered."],
  stream_sink_sent_bytes_total: ['counter', "Bytes of the stream's lines the sink delivered."],
  stream_sink_dropped_lines_total: ['counter', 'Lines of the stream the sink dropped, by reason.'],
  stream_sink_dropped_bytes_total: ['counter', "Bytes of the stream's lines the sink dropped, by reason."],
  stream_sink_buffered_lines: ['gauge', 'Lines of the stream taken in and neither sent nor dropped yet.'],
  stream_sink_buffered_bytes: ['gauge', "Bytes of the stream's lines the sink holds, not sent yet."],
  sink_sent_lines_total: ['counter', 'Lines the sink delivered, all streams.'],
  sink_sent_bytes_total: ['counter', 'Bytes of the lines the sink delivered, all streams.'],
  sink_dropped_lines_total: ['counter', 'Lines the sink dropped, all streams, by reason.'],
  sink_dropped_bytes_total: ['counter', 'Bytes of the lines the sink dropped, all streams, by reason.'],
  sink_buffered_lines: ['gauge', 'Lines taken in and neither sent nor dropped yet, streams now served.'],
  sink_buffered_bytes: ['gauge', 'Bytes of lines not sent yet, streams now served.'],
  sink_held_bytes: ['gauge', 'What a shared sink holds against its budget: queues, batch memory, replay window.'],
  sink_budget_bytes: ['gauge', "A shared sink's buffer budget (buffer.max_bytes less its working set), summed over workers."],
  sink_up: ['gauge', '1 while the sink delivers, 0 while it is down or starting.'],
} as const;
type FamilyName = keyof typeof FAMILIES;

const STREAM_STATES: StreamState[] = ['starting', 'running', 'ending', 'waiting for its worker', 'worker not answering'];
const WORKER_STATES: WorkerStatus['state'][] = ['ready', 'starting', 'not answering'];

type Labels = Record<string, string>;

/** Every metric of the daemon from one status: series of streams that ended are gone with them. */
export function renderMetrics(status: DaemonStatus): string {
  /** Per family, label sets (formatted) to values; samples with the same labels add up. */
  const samples = new Map<FamilyName, Map<string, number>>();
  const add = (name: FamilyName, labels: Labels, value: number): void => {
    let family = samples.get(name);
    if (family === undefined) samples.set(name, (family = new Map()));
    const key = formatLabels(labels);
    family.set(key, (family.get(key) ?? 0) + value);
  };
  // Every state, so a dashboard sees 0 rather than no data.
  for (const state of STREAM_STATES) add('streams', { state }, 0);
  for (const state of WORKER_STATES) add('workers', { state }, 0);
  for (const worker of status.workers) add('workers', { state: worker.state }, 1);
  for (const stream of status.streams) {
    add('streams', { state: stream.state }, 1);
    if (stream.bytes_in === undefined) continue;
    const labels = streamLabels(stream);
    add('stream_bytes_in_total', labels, stream.bytes_in);
    add('stream_rotations_total', labels, stream.rotations ?? 0);
    for (const sink of stream.sinks) {
      const sinkLabels = { sink: sink.sink, type: sink.type, ...labels };
      add('stream_sink_sent_lines_total', sinkLabels, sink.sent_lines);
      add('stream_sink_sent_bytes_total', sinkLabels, sink.sent_bytes);
      for (const [reason, dropped] of Object.entries(sink.dropped_by)) {
        add('stream_sink_dropped_lines_total', { ...sinkLabels, reason }, dropped.lines);
        add('stream_sink_dropped_bytes_total', { ...sinkLabels, reason }, dropped.bytes);
      }
      add('stream_sink_buffered_lines', sinkLabels, sink.buffered_lines);
      add('stream_sink_buffered_bytes', sinkLabels, sink.buffered_bytes);
    }
  }
  for (const sink of status.sinks) {
    const labels = { sink: sink.sink, type: sink.type };
    add('sink_sent_lines_total', labels, sink.sent_lines);
    add('sink_sent_bytes_total', labels, sink.sent_bytes);
    for (const [reason, dropped] of Object.entries(sink.dropped_by)) {
      add('sink_dropped_lines_total', { ...labels, reason }, dropped.lines);
      add('sink_dropped_bytes_total', { ...labels, reason }, dropped.bytes);
    }
    add('sink_buffered_lines', labels, sink.buffered_lines);
    add('sink_buffered_bytes', labels, sink.buffered_bytes);
    if (sink.held_bytes !== undefined) add('sink_held_bytes', labels, sink.held_bytes);
    if (sink.budget_bytes !== undefined) add('sink_budget_bytes', labels, sink.budget_bytes);
    add('sink_up', labels, sink.health === 'up' ? 1 : 0);
  }
  let text = '';
  for (const [name, family] of samples) {
    const [type, help] = FAMILIES[name];
    const metric = `mesos_log_splitter_${name}`;
    text += `# HELP ${metric} ${help}\n# TYPE ${metric} ${type}\n`;
    for (const [labels, value] of family) text += `${metric}${labels} ${value}\n`;
  }
  return text;
}

function streamLabels(stream: StreamStatus): Labels {
  return Object.fromEntries(STREAM_LABELS.map((key) => [key, stream[key] ?? '']));
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([key, value]) => `${key}="${escapeLabelValue(value)}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

/** Label values: backslash, double quote and line feed escaped, as the format says. */
const escapeLabelValue = (value: string): string => value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
