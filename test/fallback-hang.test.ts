// Fallback mode waits for logrotate at each rotation, and the task can hang logrotate: it opens
// `<log>.logrotate.state` by name, and a FIFO there blocks it forever. logrotate runs in a process group of its own,
// killed whole at the rotation timeout or 4 s after EOF, so the stream goes on and the helper exits in time.
import { execFileSync } from 'node:child_process';
import { chownSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDirectives } from '../src/sandbox/directives.js';
import { statePath, writeLogrotateConf } from '../src/sandbox/logrotate-conf.js';
import { LogrotateRotation } from '../src/sandbox/rotation.js';
import { SandboxWriter } from '../src/sandbox/writer.js';
import { numberedLines } from './helpers/data.js';
import { captureLog } from './helpers/log.js';
import { listDir, makeSandbox } from './helpers/sandbox.js';
import { spawnLogger } from './helpers/spawn.js';
import { asTask, NOBODY } from './helpers/task.js';
import { isRoot } from './helpers/tmpfs.js';
import { waitFor } from './helpers/wait.js';

const PAGE = 4096;
const MAX = 4 * PAGE;
const LINE = 128;
/** dateext is not handled natively: the helper runs logrotate. */
const OPTIONS = 'rotate 2\ndateext';

/** Live processes whose argv mentions `text` (a sandbox's state file: only logrotate runs name it). */
function processesNaming(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const zombie = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
      if (!zombie && readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(text)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Runs `test`, then kills any logrotate it left blocked on the sandbox's FIFO (only when the fix is missing). */
async function reapingLogrotate(stdout: string, test: () => Promise<void>): Promise<void> {
  try {
    await test();
  } finally {
    for (const pid of processesNaming(statePath(stdout))) process.kill(pid, 'SIGKILL');
  }
}

describe.concurrent('fallback: a FIFO at the logrotate state file', () => {
  it.skipIf(!isRoot())('root helper, task nobody: exit 0 within 5 s of EOF, no logrotate left', async () => {
    const { dir, stdout } = makeSandbox();
    chownSync(dir, NOBODY, NOBODY);
    asTask(dir, 'mkfifo stdout.logrotate.state');
    await reapingLogrotate(stdout, async () => {
      const helper = await spawnLogger({ log_filename: stdout, logrotate_options: OPTIONS, max_size: `${MAX}B` });
      // Over two rotations' worth, within what the pipe and the helper take while the first rotation hangs.
      const input = numberedLines(320, LINE);
      await helper.write(input);
      const running = (): boolean => processesNaming(statePath(stdout)).length > 0;
      await waitFor(running, { what: 'logrotate running', timeoutMs: 20_000 });
      await helper.end();
      const stuck = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the helper still runs 10 s after EOF')), 10_000),
      );
      const exit = await Promise.race([helper.exited, stuck]);
      expect(exit.code, helper.stderr()).toBe(0);
      expect(exit.afterEndMs).toBeLessThan(5000);
      const messages = helper.diagnostics().map((d) => d.msg);
      expect(messages).toContain('the stream ended while logrotate ran; killed its process group');
      // Nothing rotated, nothing lost: the live file holds the whole stream.
      expect(readFileSync(stdout).equals(input)).toBe(true);
      expect(processesNaming(statePath(stdout))).toEqual([]);
    });
  });

  it('the stream keeps flowing past the rotation timeout, and rotates again once the FIFO is gone', async () => {
    const { dir, stdout } = makeSandbox();
    const directives = parseDirectives(Buffer.from(OPTIONS));
    expect(directives.kind).toBe('logrotate');
    await reapingLogrotate(stdout, async () => {
      execFileSync('mkfifo', [statePath(stdout)]);
      const threshold = MAX - PAGE;
      const conf = await writeLogrotateConf(stdout, Buffer.from(OPTIONS), threshold);
      const { log, entries } = captureLog();
      const timeoutMs = 1000;
      const rotation = new LogrotateRotation(stdout, 'logrotate', conf, threshold, log, timeoutMs);
      const sandbox = new SandboxWriter({ path: stdout, maxSize: MAX, rotation, log });
      try {
        // Two rotations, each killed at the timeout; then the writer goes on.
        const hung = numberedLines(320, LINE);
        sandbox.write(hung);
        const written = (): boolean => sandbox.stats.bytesWritten === hung.length;
        await waitFor(written, { what: 'the stream written', timeoutMs: 15_000 });
        const timeouts = entries().filter((e) => e.msg === 'logrotate ran over its timeout; killed its process group');
        expect(timeouts.length).toBe(sandbox.stats.rotations);
        expect(timeouts.length).toBeGreaterThanOrEqual(2);
        expect(timeouts[0].timeoutMs).toBe(timeoutMs);
        expect(processesNaming(statePath(stdout))).toEqual([]);
        expect(readFileSync(stdout).equals(hung)).toBe(true);

        // The task removes its FIFO: logrotate rotates again (dateext: `stdout-YYYYMMDD`).
        rmSync(statePath(stdout));
        // Past --max_size counted from the last (failed) rotation.
        const after = numberedLines(100, LINE, 'after');
        sandbox.write(after);
        await sandbox.end();
        const rotated = listDir(dir).filter((name) => /^stdout-\d{8}$/.test(name));
        expect(rotated.length, JSON.stringify(entries())).toBe(1);
        const kept = Buffer.concat([readFileSync(`${dir}/${rotated[0]}`), readFileSync(stdout)]);
        expect(kept.equals(Buffer.concat([hung, after]))).toBe(true);
      } finally {
        await conf.close();
      }
    });
  });
});
