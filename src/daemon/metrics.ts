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
  sink_sent_lines_total: ['counter', 'Lines the sink delivered.'],
  sink_sent_bytes_total: ['counter', 'Bytes of the lines the sink delivered.'],
  sink_dropped_lines_total: ['counter', 'Lines the sink dropped, by reason.'],
  sink_dropped_bytes_total: ['counter', 'Bytes of the lines the sink dropped, by reason.'],
  sink_buffered_lines: ['gauge', 'Lines taken in and neither sent nor dropped yet.'],
  sink_buffered_bytes: ['gauge', 'Bytes the sink holds for lines not sent yet.'],
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
      add('sink_sent_lines_total', sinkLabels, sink.sent_lines);
      add('sink_sent_bytes_total', sinkLabels, sink.sent_bytes);
      for (const [reason, dropped] of Object.entries(sink.dropped_by)) {
        add('sink_dropped_lines_total', { ...sinkLabels, reason }, dropped.lines);
        add('sink_dropped_bytes_total', { ...sinkLabels, reason }, dropped.bytes);
      }
      add('sink_buffered_lines', sinkLabels, sink.buffered_lines);
      add('sink_buffered_bytes', sinkLabels, sink.buffered_bytes);
      add('sink_up', sinkLabels, sink.health === 'up' ? 1 : 0);
    }
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
