/**
 * SIGHUP's default action kills the process, which would break the task's pipe. This module is the bundle's first
 * import, so a SIGHUP that arrives while the rest still loads is only remembered, and replayed to the real handler.
 */
let pending = false;
const remember = (): void => {
  pending = true;
};
process.on('SIGHUP', remember);

export function onSighup(handler: () => void): void {
  process.off('SIGHUP', remember);
  process.on('SIGHUP', handler);
  if (pending) {
    pending = false;
    handler();
  }
}
