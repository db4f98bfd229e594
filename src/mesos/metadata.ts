import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';

/** Who wrote a stream: from the sandbox path, then (optionally) from the agent's /state. */
export interface StreamMetadata {
  stream: 'stdout' | 'stderr';
  hostname: string;
  /** The sandbox directory: the log file's directory. */
  sandbox: string;
  agent_id?: string;
  framework_id?: string;
  executor_id?: string;
  /** Nested container ids joined with `.`, as Mesos prints them. */
  container_id?: string;
  task_id?: string;
  task_name?: string;
  framework_name?: string;
  executor_name?: string;
  executor_labels: Record<string, string>;
  task_labels: Record<string, string>;
  /** The task user (--user), when the agent switches users. */
  user?: string;
}

const EXECUTOR_RUN = /\/(?:slaves|agents)\/([^/]+)\/frameworks\/([^/]+)\/executors\/([^/]+)\/runs\/([^/]+)((?:\/containers\/[^/]+)*)$/;
const STANDALONE = /\/containers\/([^/]+)((?:\/containers\/[^/]+)*)$/;

/** `C1` plus `/containers/C2/containers/C3` -> `C1.C2.C3`. */
const containerId = (top: string, nested: string): string =>
  [top, ...nested.split('/containers/').filter((id) => id !== '')].join('.');

/**
 * Reads the ids out of a sandbox path:
 * `<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>[/containers/<child>...]/stdout`,
 * or `<work_dir>/containers/<id>[/containers/<child>...]/stdout` for standalone containers.
 */
export function metadataFromPath(logFilename: string, user?: string): StreamMetadata {
  const sandbox = dirname(logFilename);
  const meta: StreamMetadata = {
    stream: basename(logFilename).startsWith('stderr') ? 'stderr' : 'stdout',
    hostname: hostname(),
    sandbox,
    executor_labels: {},
    task_labels: {},
    ...(user === undefined ? {} : { user }),
  };
  // Anchored at the end: the work_dir above the layout may hold any directory names ("containers", "runs"...).
  const run = EXECUTOR_RUN.exec(sandbox);
  const standalone = run === null ? STANDALONE.exec(sandbox) : null;
  if (run !== null) {
    [, meta.agent_id, meta.framework_id, meta.executor_id] = run;
    meta.container_id = containerId(run[4], run[5]);
  } else if (standalone !== null) {
    meta.container_id = containerId(standalone[1], standalone[2]);
  }
  return meta;
}

/** Syslog severity of a stream, as the Mesos journald loggers set it: info for stdout, err for stderr. */
export const SEVERITY = { stdout: 6, stderr: 3 } as const;

/** The name a line is filed under when none is configured: the task id, else the executor id. */
export const writerName = (meta: StreamMetadata): string => meta.task_id ?? meta.executor_id ?? 'mesos-task';
