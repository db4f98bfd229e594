import type { StreamMetadata } from '../../mesos/metadata.js';

/** The name older external-logger builds gave the ExecutorInfo variable; set too, so their scripts keep working. */
const LEGACY_EXECUTORINFO_VAR = 'MESOS_EXECUTORINFO_JSON';

/** Names the exec sink owns: an operator's `env` may not set them, and inherited copies are removed. */
export function isReservedVariable(name: string): boolean {
  return name.startsWith('MESOS_LOG_') || name === LEGACY_EXECUTORINFO_VAR;
}

/**
 * The ExecutorInfo the External container logger passed, as far as the metadata knows it, in the shape and field
 * order Mesos's JSON::protobuf prints. Fields the helper cannot know (command, resources, container) are left out
 * rather than invented.
 */
export function executorInfoJson(meta: StreamMetadata): string {
  const info: Record<string, unknown> = {};
  if (meta.executor_id !== undefined) info.executor_id = { value: meta.executor_id };
  if (meta.framework_id !== undefined) info.framework_id = { value: meta.framework_id };
  if (meta.executor_name !== undefined) info.name = meta.executor_name;
  const labels = Object.entries(meta.executor_labels);
  if (labels.length > 0) info.labels = { labels: labels.map(([key, value]) => ({ key, value })) };
  return JSON.stringify(info);
}

/**
 * The exec process's environment: the helper's own, the operator's `env`, then the External container logger's
 * variables and the ids, from the newest metadata. Inherited MESOS_LOG_* names are dropped so the process sees only
 * what this stream really knows.
 */
export function execEnvironment(
  inherited: NodeJS.ProcessEnv,
  extra: Record<string, string>,
  meta: StreamMetadata,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(inherited)) {
    if (value !== undefined && !isReservedVariable(name)) env[name] = value;
  }
  Object.assign(env, extra);
  const executorInfo = executorInfoJson(meta);
  const own: Record<string, string | undefined> = {
    MESOS_LOG_STREAM: meta.stream.toUpperCase(),
    MESOS_LOG_SANDBOX_DIRECTORY: meta.sandbox,
    MESOS_LOG_EXECUTORINFO_JSON: executorInfo,
    [LEGACY_EXECUTORINFO_VAR]: executorInfo,
    MESOS_LOG_USER: meta.user,
    MESOS_LOG_AGENT_ID: meta.agent_id,
    MESOS_LOG_FRAMEWORK_ID: meta.framework_id,
    MESOS_LOG_EXECUTOR_ID: meta.executor_id,
    MESOS_LOG_CONTAINER_ID: meta.container_id,
    MESOS_LOG_TASK_ID: meta.task_id,
    MESOS_LOG_TASK_NAME: meta.task_name,
    MESOS_LOG_FRAMEWORK_NAME: meta.framework_name,
  };
  // Unknown means unset, never set empty.
  for (const [name, value] of Object.entries(own)) if (value !== undefined && value !== '') env[name] = value;
  return env;
}
