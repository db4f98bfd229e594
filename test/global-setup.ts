import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** This run's copy of the launchers and the bundle (see below). */
    launcherDir: string;
  }
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * Builds the bundle once per run, then lays it out as it is installed, launchers beside the bundle, in a directory
 * of this run's own: other runs in the same tree rebuild dist/ while these tests spawn the helper. It stays under
 * dist/ so that the bundle still finds the project's node_modules (journald's native addon).
 */
export default function setup(project: TestProject): () => void {
  const runs = join(ROOT, 'dist', 'test-runs');
  // Left behind by runs that were killed.
  for (const pid of existsSync(runs) ? readdirSync(runs) : []) {
    if (!existsSync(`/proc/${pid}`)) rmSync(join(runs, pid), { recursive: true, force: true });
  }
  const dir = join(runs, String(process.pid));
  for (let attempt = 1; ; attempt++) {
    execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    copyFileSync(join(ROOT, 'dist', 'mesos-log-splitter.mjs'), join(dir, 'mesos-log-splitter.mjs'));
    try {
      // A build running elsewhere at the same moment may have left a half-written file.
      execFileSync(process.execPath, ['--check', join(dir, 'mesos-log-splitter.mjs')], { stdio: 'ignore' });
      break;
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
  // As a release lays them out: the shim as the drop-in (it finds the bundle beside itself), compiled here from
  // binding.gyp's sources and flags for it, so that a run tests the current source; the operator launcher.
  const shim = shimTarget();
  execFileSync('cc', [...shim.cflags, '-o', join(dir, 'mesos-logrotate-logger'), ...shim.sources.map((source) => join(ROOT, source))], { stdio: 'inherit' });
  copyFileSync(join(ROOT, 'bin/mesos-log-splitter'), join(dir, 'mesos-log-splitter'));
  chmodSync(join(dir, 'mesos-log-splitter'), 0o755);
  // The native addons, beside the bundle as a release ships them (without them the helper falls back to JavaScript).
  for (const addon of ['newline_count.node', 'socket_queue.node']) {
    if (existsSync(join(ROOT, 'build/Release', addon))) copyFileSync(join(ROOT, 'build/Release', addon), join(dir, addon));
  }
  project.provide('launcherDir', dir);
  return () => rmSync(dir, { recursive: true, force: true });
}

/** binding.gyp's target for the shim (the file is plain JSON): one list of sources and flags for npm ci and the tests. */
function shimTarget(): { sources: string[]; cflags: string[] } {
  const gyp = JSON.parse(readFileSync(join(ROOT, 'binding.gyp'), 'utf8')) as { targets: { target_name: string; sources: string[]; cflags: string[] }[] };
  const target = gyp.targets.find((t) => t.target_name === 'mesos-logrotate-logger');
  if (target === undefined) throw new Error('binding.gyp has no mesos-logrotate-logger target');
  return target;
}
