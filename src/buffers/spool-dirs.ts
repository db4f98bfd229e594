import { lchownSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { SinkSpec } from '../config/config.js';
import type { Logger } from '../diagnostics.js';
import { lookupUser } from '../system.js';

/**
 * Run by the root daemon before it starts a task user's worker, and at a reload: each disk buffer's directory (made
 * root's, 0755, if missing) and in it the user's spool directory, made the user's, 0700. A worker runs as its user
 * and could create neither under a root-owned path. Nothing is followed or taken over: an entry that is already
 * there is left as it is, and the worker refuses one that is not its own (logged there).
 */
export function prepareSpoolDirs(sinks: SinkSpec[], user: string | undefined, log: Logger): void {
  const disks = sinks.filter((sink) => sink.disk !== undefined);
  // Without --user the worker is root and makes its own.
  if (disks.length === 0 || user === undefined) return;
  let account;
  try {
    account = lookupUser(user);
  } catch {
    return; // the worker reports a user that does not exist
  }
  for (const sink of disks) {
    const base = sink.disk!.path;
    const own = join(base, user);
    try {
      mkdirSync(base, { recursive: true, mode: 0o755 });
      // Others may not swap what is created in it (a sticky one, like /tmp, is fine too).
      const parent = lstatSync(base);
      if (!parent.isDirectory() || parent.uid !== 0 || ((parent.mode & 0o022) !== 0 && (parent.mode & 0o1000) === 0)) {
        throw new Error(`${base} must be a directory owned by root that others cannot write (or sticky)`);
      }
      mkdirSync(own, { mode: 0o700 });
      lchownSync(own, account.uid, account.gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      log.error({ sink: sink.name, dir: own, err: (err as Error).message }, "cannot make a task user's disk buffer directory");
    }
  }
}
