/** The daemon's socket, as the shim finds it too (native/shim.c): the flag, else the variable, else the default. */
export const DEFAULT_SOCKET = '/run/mesos-log-splitter/daemon.sock';

export const daemonSocketPath = (flag: string | undefined): string =>
  flag ?? (process.env.LOG_SPLITTER_DAEMON_SOCKET || DEFAULT_SOCKET);
