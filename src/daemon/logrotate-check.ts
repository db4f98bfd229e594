import { checkLogrotate } from '../cli/flags.js';

/** How long a --logrotate_path that ran stays trusted. */
const TRUSTED_MS = 60_000;

/**
 * The helper's check that `<path> --help` runs, remembered for a minute per path once it passed. Each check is a
 * shell started synchronously (10-60 ms on a busy 2-core agent) on the daemon's one thread, where it would hold up
 * every other stream's hand-over; the agent passes the same path for all of them. A failing path is checked anew.
 */
export class LogrotateCheck {
  private readonly passed = new Map<string, number>();

  readonly check = (path: string): void => {
    const at = this.passed.get(path);
    if (at !== undefined && Date.now() - at < TRUSTED_MS) return;
    checkLogrotate(path);
    this.passed.set(path, Date.now());
  };
}
