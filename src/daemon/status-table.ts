import type { DaemonStatus, StreamStatus } from './status.js';

/** `status` for people: the daemon, its workers, a row per stream and a row per sink. */
export function formatStatus(status: DaemonStatus): string {
  const { daemon } = status;
  let out = `daemon pid ${daemon.pid}, socket ${daemon.socket}, metrics ${daemon.metrics_listen ?? 'off'}\n`;
  out += `workers: ${status.workers.map((w) => `${w.user} (pid ${w.pid ?? '-'}, ${w.state}, ${w.streams} streams)`).join('; ') || 'none'}\n\n`;
  const sinkNames = status.sinks.map((sink) => sink.sink);
  out += table(
    ['TASK', 'EXECUTOR', 'CONTAINER', 'STREAM', 'USER', 'BYTES IN', 'ROTATIONS', 'STATE', ...sinkNames.map((name) => `${name} SENT/DROPPED/BUFFERED`)],
    status.streams.map((stream) => [
      stream.task_id ?? '-',
      stream.executor_id ?? '-',
      stream.container_id ?? '-',
      stream.stream,
      stream.user,
      stream.bytes_in === undefined ? '-' : String(stream.bytes_in),
      stream.rotations === undefined ? '-' : String(stream.rotations),
      stream.shim === 'away' ? `${stream.state}, shim away` : stream.state,
      ...sinkNames.map((name) => sinkCell(stream, name)),
    ]),
  );
  out += `\n${status.streams.length} streams\n\n`;
  out += table(
    ['SINK', 'TYPE', 'HEALTH', 'STREAMS UP/DOWN/STARTING', 'SENT', 'DROPPED', 'BUFFERED', 'LAST ERROR'],
    status.sinks.map((sink) => [
      sink.sink,
      sink.type,
      sink.health,
      `${sink.streams.up}/${sink.streams.down}/${sink.streams.starting}`,
      String(sink.sent_lines),
      String(sink.dropped_lines),
      `${sink.buffered_lines} (${sink.buffered_bytes} B)`,
      sink.last_error ?? '',
    ]),
  );
  return out;
}

function sinkCell(stream: StreamStatus, name: string): string {
  const sink = stream.sinks.find((one) => one.sink === name);
  return sink === undefined ? '-' : `${sink.sent_lines}/${sink.dropped_lines}/${sink.buffered_lines}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
