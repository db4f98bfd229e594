// Rotation scripts: each runs in a process group of its own, which the timeout (or the caller) kills whole, and sh
// gets the script's exact bytes. The helper's timeout is 60 s; NativeRotation takes a shorter one, for these tests.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDirectives } from '../src/sandbox/directives.js';
import { NativeRotation } from '../src/sandbox/rotation.js';
import { runShellScript } from '../src/sandbox/shell-script.js';
import { captureLog } from './helpers/log.js';
import { makeSandbox } from './helpers/sandbox.js';
import { waitFor } from './helpers/wait.js';

/** A `sleep` argument no other test uses, to find the processes a script started. */
const uniqueSleep = (): string => `1000.${process.pid}${Math.floor(Math.random() * 1e6)}`;

/** Pids of live processes whose argv is exactly `argv` (zombies count as gone). */
function processesRunning(argv: string[]): number[] {
  const wanted = `${argv.join('\0')}\0`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && readFileSync(`/proc/${entry}/cmdline`, 'latin1') === wanted) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Waits until `sleep <seconds>` runs twice (the script's background and foreground sleeps). */
const bothSleeping = (seconds: string) =>
  waitFor(() => processesRunning(['sleep', seconds]).length === 2, {
    what: `two 'sleep ${seconds}'`,
    intervalMs: 20,
    timeoutMs: 20_000,
  });

const noneLeft = (seconds: string) =>
  waitFor(() => processesRunning(['sleep', seconds]).length === 0, { what: 'no sleep left', intervalMs: 20 });

describe.concurrent('a script in its own process group', () => {
  it('the timeout kills what the script started, not only sh', async () => {
    const seconds = uniqueSleep();
    const script = Buffer.from(`sleep ${seconds} & sleep ${seconds}; echo never`);
    // Long enough for sh to start both sleeps on a loaded machine.
    const running = runShellScript(script, ['/nonexistent/stdout'], 3000);
    await bothSleeping(seconds);
    expect(await running).toBe('SIGKILL');
    await noneLeft(seconds);
  });

  it('an abort kills the group at once', async () => {
    const seconds = uniqueSleep();
    const stop = new AbortController();
    const running = runShellScript(Buffer.from(`sleep ${seconds} & sleep ${seconds}`), ['/x'], 60_000, stop.signal);
    await bothSleeping(seconds);
    const started = Date.now();
    stop.abort();
    expect(await running).toBe('SIGKILL');
    expect(Date.now() - started).toBeLessThan(10_000); // far from the 60 s timeout
    await noneLeft(seconds);
  });

  it('a slow prerotate: rotation goes on after the timeout and leaves no process behind', async () => {
    const { stdout } = makeSandbox();
    writeFileSync(stdout, 'first generation\n');
    const seconds = uniqueSleep();
    const options = `rotate 2\nprerotate\n  sleep ${seconds} & sleep ${seconds}; touch "$1.never"\nendscript`;
    const directives = parseDirectives(Buffer.from(options));
    if (directives.kind !== 'native') throw new Error(directives.reason);
    const { log, entries } = captureLog();
    const rotation = new NativeRotation(stdout, directives.policy, log, 3000);
    const rotating = rotation.rotate();
    await bothSleeping(seconds);
    await rotating;
    await rotation.settle();
    expect(readFileSync(`${stdout}.1`, 'utf8')).toBe('first generation\n');
    expect(entries().some((e) => e.hook === 'prerotate' && e.result === 'SIGKILL')).toBe(true);
    await noneLeft(seconds);
    expect(readdirSync(join(stdout, '..'))).not.toContain('stdout.never');
  });
});

describe.concurrent('what sh gets', () => {
  it('the exact bytes, $0 and the arguments as logrotate gives them, and no fd 3', async () => {
    const { dir } = makeSandbox();
    const out = join(dir, 'out');
    const bytes = Buffer.from([0xff, 0xfe, 0x20, 0xc3, 0x28, 0x0a, 0xe2, 0x82]);
    const script = Buffer.concat([
      Buffer.from(`printf '%s|%s|%s|%s' "$0" "$1" "$2" "$#" > '${out}.args'\n`),
      Buffer.from(`if [ -e /proc/$$/fd/3 ]; then echo open; else echo closed; fi > '${out}.fd3'\n`),
      Buffer.from("printf '%s' '"),
      bytes,
      Buffer.from(`' > '${out}'\nexit 3`),
    ]);
    expect(await runShellScript(script, ['/sandbox/stdout', '/sandbox/stdout.1'], 10_000)).toBe(3);
    expect(readFileSync(out).equals(bytes)).toBe(true);
    expect(readFileSync(`${out}.args`, 'utf8')).toBe('logrotate_script|/sandbox/stdout|/sandbox/stdout.1|2');
    expect(readFileSync(`${out}.fd3`, 'utf8')).toBe('closed\n');
  });
});
