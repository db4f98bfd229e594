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
  const parts = sandbox.split('/');
  const containers: string[] = [];
  for (let i = 0; i + 1 < parts.length; i++) {
    const value = parts[i + 1];
    switch (parts[i]) {
      case 'slaves':
      case 'agents':
        meta.agent_id = value;
        break;
      case 'frameworks':
        meta.framework_id = value;
        break;
      case 'executors':
        meta.executor_id = value;
        break;
      case 'runs':
      case 'containers':
        containers.push(value);
        break;
      default:
        continue;
    }
    i++;
  }
  if (containers.length > 0) meta.container_id = containers.join('.');
  return meta;
}
