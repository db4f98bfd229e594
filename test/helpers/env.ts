/**
 * The environment the Mesos agent gives its container-logger helpers: its own, minus every MESOS_* and LIBPROCESS_*
 * variable, plus LIBPROCESS_IP and LIBPROCESS_NUM_WORKER_THREADS.
 */
export function agentEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('MESOS_') && !name.startsWith('LIBPROCESS_')) env[name] = value;
  }
  return { ...env, LIBPROCESS_IP: '127.0.0.1', LIBPROCESS_NUM_WORKER_THREADS: '8', ...extra };
}
