// SIGUSR1 makes Node open its inspector (an unauthenticated port through which any local process runs code in the
// helper). Through the real launchers, at points from the first moment to mid-stream, it must never listen, and the
// helper must carry on with its stream intact.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { makeSandbox, readKept } from './helpers/sandbox.js';
import { finalStats, LAUNCHER_DIR, spawnLogger, type PipedProcess } from './helpers/spawn.js';
import { sleep, waitFor } from './helpers/wait.js';

/** The TCP ports `pid` listens on (from its socket fds and /proc/net/tcp, tcp6). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match !== null) inodes.add(match[1]);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const row of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1)) {
      const fields = row.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; field 9 is the inode.
      if (fields[3] === '0A' && inodes.has(fields[9])) ports.push(parseInt(fields[1].split(':')[1], 16));
    }
  }
  return ports;
}

/** What the sandbox holds, or undefined while a rotation is moving a file. */
function settledSize(log: string): number | undefined {
  try {
    return readKept(log).length;
  } catch {
    return undefined;
  }
}

/** Whether the launcher's trap is in place (`pid` ignores SIGUSR1), or it is past it (it is Node already). */
function pastTrap(pid: number): boolean {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const ignored = BigInt(`0x${/^SigIgn:\s+([0-9a-f]+)$/m.exec(status)![1]}`);
  return (ignored & (1n << 9n)) !== 0n || /^Name:\s+node$/m.test(status);
}

/**
 * The points are counted from the launcher's first command, its `trap`. Before it, for well under a millisecond
 * (longer on a loaded machine), SIGUSR1 kills /bin/sh; a task cannot send it then, since the launcher runs as the
 * agent's user until the helper switches to --user (see docs/operations.md, Security).
 */
async function sendUsr1(pid: number, delayMs: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!pastTrap(pid)) {
    if (Date.now() > deadline) throw new Error('the launcher never got past its trap');
  }
  if (delayMs > 0) await sleep(delayMs);
  process.kill(pid, 'SIGUSR1');
}

/**
 * What Node said about its inspector, except that it failed to listen on the launcher's unbindable address (a signal
 * while Node starts, before the listener). Never an attempt on its default 127.0.0.1:9229.
 */
function inspectorNews(stderr: string): string[] {
  const said = stderr.match(/^.*(inspector|Debugger).*$/gim) ?? [];
  return said.filter((line) => !line.startsWith('Starting inspector on 192.0.2.1:9229 failed'));
}

/** While the helper runs: it listens on no port. */
function expectNoInspector(helper: PipedProcess): void {
  expect(listeningPorts(helper.pid)).toEqual([]);
  expect(inspectorNews(helper.stderr())).toEqual([]);
}

describe.concurrent('SIGUSR1 never opens the inspector', () => {
  for (const delayMs of [0, 5, 20, 50, 100, 300]) {
    it(`${delayMs} ms after the launcher starts: nothing listens, the helper carries on`, async () => {
      const { stdout } = makeSandbox();
      const helper = await spawnLogger({ log_filename: stdout, logrotate_options: 'rotate 4', max_size: '64KB' });
      await sendUsr1(helper.pid, delayMs);
      const input = numberedLines(2000, 100, `after ${delayMs} ms`);
      await helper.write(input);
      // The inspector would start on the main thread a moment after the signal.
      await waitFor(() => settledSize(stdout) === input.length, { what: 'the input in the sandbox' });
      await sleep(300);
      expectNoInspector(helper);
      await helper.end();
      expect((await helper.exited).code).toBe(0);
      expect(inspectorNews(helper.stderr())).toEqual([]);
      expect(readKept(stdout).equals(input)).toBe(true);
    });
  }

  it('mid-stream, repeatedly: not even an attempt to start it, and the stream is intact', async () => {
    const { stdout } = makeSandbox();
    const helper = await spawnLogger({ log_filename: stdout, logrotate_options: 'rotate 50', max_size: '256KB' });
    const parts = Array.from({ length: 8 }, (_, i) => numberedLines(1024, 512, `part ${i}`));
    for (const part of parts) {
      // 64 KiB writes, as a task's pipe delivers them, with a signal between parts.
      for (let at = 0; at < part.length; at += 64 * 1024) await helper.write(part.subarray(at, at + 64 * 1024));
      process.kill(helper.pid, 'SIGUSR1');
    }
    await sleep(300);
    expectNoInspector(helper);
    await helper.end();
    expect((await helper.exited).code).toBe(0);
    // Once the helper runs, the listener holds SIGUSR1: Node does not even try the launcher's unbindable address.
    expect(helper.stderr()).not.toMatch(/inspector/i);
    expect(readKept(stdout).equals(Buffer.concat(parts))).toBe(true);
    expect(finalStats(helper).bytesDropped).toBe(0);
  });

  it('the operator launcher (mesos-log-splitter) too', async () => {
    for (const delayMs of [0, 20, 50, 100]) {
      const child = spawn(join(LAUNCHER_DIR, 'mesos-log-splitter'), ['help'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      await sendUsr1(child.pid!, delayMs).catch(() => undefined); // it may be done already
      expect(await exited).toBe(0);
      expect(out).toMatch(/^Usage: mesos-log-splitter/);
      expect(inspectorNews(err)).toEqual([]);
    }
  });
});
