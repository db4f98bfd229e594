import type { DaemonStatus, StreamStatus } from './status.js';

/** Prometheus text exposition format 0.0.4. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const PREFIX = 'mesos_log_splitter_';

/**
 * A stream's labels: the ids its path gives at once. Not the task id: it arrives later from the agent and would
 * start a second series for the same stream.
 */
const STREAM_LABELS = ['agent_id', 'framework_id', 'executor_id', 'container_id', 'stream'] as const;

type Labels = Record<string, string>;

interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  /** Label sets (joined) to values; samples with the same labels add up. */
  samples: Map<string, number>;
}

/** Every metric of the daemon from one status: series of streams that ended are gone with them. */
export function renderMetrics(status: DaemonStatus): string {
  const families = new Map<string, Family>();
  const add = (name: string, type: Family['type'], help: string, labels: Labels, value: number): void => {
    let family = families.get(name);
    if (family === undefined) {
      family = { name: PREFIX + name, type, help, samples: new Map() };
      families.set(name, family);
    }
    const key = formatLabels(labels);
    family.samples.set(key, (family.samples.get(key) ?? 0) + value);
  };
  // Families that always appear, so a dashboard sees 0 rather than no data.
  for (const state of ['running', 'other'] as const) add('streams', 'gauge', 'Streams the daemon serves, by state.', { state }, 0);
  for (const state of ['ready', 'starting', 'not answering'] as const) {
    add('workers', 'gauge', 'Worker processes (one per task user), by state.', { state }, 0);
  }
  for (const worker of status.workers) add('workers', 'gauge', '', { state: worker.state }, 1);
  for (const stream of status.streams) {
    add('streams', 'gauge', '', { state: stream.state === 'running' ? 'running' : 'other' }, 1);
    if (stream.bytes_in === undefined) continue;
    const labels = streamLabels(stream);
    add('stream_bytes_in_total', 'counter', 'Bytes read from the task stream.', labels, stream.bytes_in);
    add('stream_rotations_total', 'counter', 'Sandbox file rotations.', labels, stream.rotations ?? 0);
    for (const sink of stream.sinks) {
      const sinkLabels = { sink: sink.sink, type: sink.type, ...labels };
      add('sink_sent_lines_total', 'counter', 'Lines the sink delivered.', sinkLabels, sink.sent_lines);
      add('sink_sent_bytes_total', 'counter', 'Bytes of the lines the sink delivered.', sinkLabels, sink.sent_bytes);
      for (const [reason, dropped] of Object.entries(sink.dropped_by)) {
        add('sink_dropped_lines_total', 'counter', 'Lines the sink dropped, by reason.', { ...sinkLabels, reason }, dropped.lines);
        add('sink_dropped_bytes_total', 'counter', 'Bytes of the lines the sink dropped, by reason.', { ...sinkLabels, reason }, dropped.bytes);
      }
      add('sink_buffered_lines', 'gauge', 'Lines taken in and neither sent nor dropped yet.', sinkLabels, sink.buffered_lines);
      add('sink_buffered_bytes', 'gauge', 'Bytes the sink holds for lines not sent yet.', sinkLabels, sink.buffered_bytes);
      add('sink_up', 'gauge', '1 while the sink delivers, 0 while it is down or starting.', sinkLabels, sink.health === 'up' ? 1 : 0);
    }
  }
  let text = '';
  for (const family of families.values()) {
    const help = family.help || 'See docs/daemon.md.';
    text += `# HELP ${family.name} ${escapeHelp(help)}\n# TYPE ${family.name} ${family.type}\n`;
    for (const [labels, value] of family.samples) text += `${family.name}${labels} ${value}\n`;
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
export const escapeLabelValue = (value: string): string =>
  value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');

const escapeHelp = (help: string): string => help.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');
