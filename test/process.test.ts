// The helper as a process: session leadership, prompt exit at EOF, latency, backpressure and memory, and the
// installed layout (launcher plus bundle, nothing else).
import { once } from 'node:events';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { childPids, hasExited, procStat, procStatusKb } from './helpers/proc.js';
import { listDir, makeSandbox, readKept, readLog } from './helpers/sandbox.js';
import { finalStats, LAUNCHER_DIR, LOGGER_BIN, loggerArgv, pipeThrough, spawnLogger, spawnPiped } from './helpers/spawn.js';
import { agentEnv } from './helpers/env.js';
import { sleep, waitFor } from './helpers/wait.js';

const fileHas = (file: string, bytes: number): boolean => existsSync(file) && statSync(file).size >= bytes;

/** The node process behind a launcher pid: the pid itself once exec'd into node, else its node child. */
async function nodePid(pid: number): Promise<number> {
  return waitFor(
    () => {
      if (procStat(pid).comm === 'node') return pid;
      return childPids(pid).find((child) => procStat(child).comm === 'node');
    },
    { what: `node under ${pid}` },
  );
}

describe.concurrent('session', () => {
  it('the node process reading the pipe is its own session leader, outside the test session', async () => {
    const { stdout } = makeSandbox();
    const helper = await spawnLogger({ log_filename: stdout });
    await helper.write('hello\n');
    await waitFor(() => fileHas(stdout, 6), { what: 'the first line' });
    // The launcher exec'd into node: the pid the agent holds is the reader itself.
    expect(await nodePid(helper.pid)).toBe(helper.pid);
    const stat = procStat(helper.pid);
    expect(stat.session).toBe(helper.pid);
    expect(stat.pgrp).toBe(helper.pid);
    expect(stat.session).not.toBe(procStat('self').session);
    expect(statSync(`/proc/${helper.pid}/fd/0`).isFIFO()).toBe(true);
    await helper.end();
    expect((await helper.exited).code).toBe(0);
    expect(helper.diagnostics().filter((d) => /session/.test(d.msg))).toEqual([]);
  });

  it('outlives the process group that started it', async () => {
    const { stdout } = makeSandbox();
    // A stand-in for the agent: a group leader that starts the helper in the background (stdin kept: sh gives
    // background jobs /dev/null), then dies with its group.
    const argv = loggerArgv({ log_filename: stdout });
    const script = 'exec 3<&0; "$0" "$@" <&3 3<&- & wait';
    const agent = await spawnPiped('/bin/sh', ['-c', script, LOGGER_BIN, ...argv], { detached: true });
    const helperPid = await waitFor(() => childPids(agent.pid).find((pid) => procStat(pid).comm === 'node'));
    await agent.write('before\n');
    await waitFor(() => fileHas(stdout, 7));
    const died = once(agent.child, 'exit');
    process.kill(-agent.pid, 'SIGKILL');
    // 'exit', not agent.exited: the helper still holds the stderr pipe it inherited.
    expect((await died)[1]).toBe('SIGKILL');
    expect(procStat(helperPid).comm).toBe('node');
    // The pipe's write end is still ours: the helper keeps logging, then ends at EOF.
    await agent.write('after\n');
    await waitFor(() => fileHas(stdout, 13), { what: 'a line written after the group was killed' });
    await agent.end();
    await waitFor(() => hasExited(helperPid), { what: 'the helper to exit' });
    expect(readFileSync(stdout, 'utf8')).toBe('before\nafter\n');
  });

  it('started as a group leader, the launcher lives and exits with the helper', async () => {
    const { stdout } = makeSandbox();
    const helper = await spawnLogger({ log_filename: stdout }, { detached: true });
    await helper.write('one\n');
    await waitFor(() => fileHas(stdout, 4));
    const reader = await nodePid(helper.pid);
    expect(procStat(reader).session).toBe(reader);
    await sleep(200);
    // Whoever watches the pid it started must not see the helper end while the stream is still open.
    expect(helper.child.exitCode).toBe(null);
    await helper.write('two\n');
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(2000);
    expect(readFileSync(stdout, 'utf8')).toBe('one\ntwo\n');
  });
});

describe.concurrent('prompt exit at EOF', () => {
  it('exits 0 well within 5 s with a 2 MB compression pending', async () => {
    const { dir, stdout } = makeSandbox();
    // 2 MiB of lines plus one: the rotation, and the gzip of a full 2 MiB file, start just before EOF.
    const input = numberedLines(2049, 1024);
    const { helper, exit } = await pipeThrough({ log_filename: stdout, logrotate_options: 'rotate 2\ncompress', max_size: '2MB' }, input);
    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(1500);
    expect(listDir(dir)).toEqual(['stdout', 'stdout.1.gz', 'stdout.logrotate.conf']);
    expect(readLog(`${stdout}.1.gz`).equals(input.subarray(0, 2048 * 1024))).toBe(true);
  });

  it('exits 0 at once when idle, and with an unterminated line held', async () => {
    for (const tail of ['', 'no newline yet']) {
      const { stdout } = makeSandbox();
      const helper = await spawnLogger({ log_filename: stdout });
      await waitFor(() => existsSync(`${stdout}.logrotate.conf`));
      await sleep(100);
      if (tail !== '') await helper.write(tail);
      await helper.end();
      const exit = await helper.exited;
      expect(exit.code).toBe(0);
      expect(exit.afterEndMs).toBeLessThan(500);
      // Like the original, the live file is opened on the first byte: no input, no file.
      if (tail === '') expect(existsSync(stdout)).toBe(false);
      else expect(readFileSync(stdout, 'utf8')).toBe(tail);
    }
  });

  it('EOF waits for a running postrotate script, and is still prompt', async () => {
    const { dir, stdout } = makeSandbox();
    const options = `rotate 1\npostrotate\n  sleep 0.3; touch ${dir}.done\nendscript`;
    const { exit } = await pipeThrough({ log_filename: stdout, logrotate_options: options, max_size: '4KB' }, numberedLines(5, 1024));
    expect(exit.code).toBe(0);
    expect(existsSync(`${dir}.done`)).toBe(true);
    expect(exit.afterEndMs).toBeLessThan(2000);
  });
});

describe('diagnostics that cannot be written', () => {
  it('stderr on a full disk (/dev/full): every diagnostic fails, the helper copies on and exits 0', async () => {
    const { dir } = makeSandbox();
    const log = join(dir, 'stdout');
    const config = join(dir, 'config.yaml');
    // An invalid config: an error to log at start; the SIGHUPs below log more.
    writeFileSync(config, 'sinks: {x: {type: bogus}}\n');
    const helper = await spawnPiped('/bin/sh', ['-c', 'exec "$0" "$@" 2>/dev/full', LOGGER_BIN, ...loggerArgv({ log_filename: log })], {
      env: agentEnv({ LOG_SPLITTER_CONFIG: config }),
    });
    const input = numberedLines(20_000, 50);
    for (let at = 0; at < input.length; at += 100_000) {
      await helper.write(input.subarray(at, at + 100_000));
      process.kill(await nodePid(helper.pid), 'SIGHUP');
      await sleep(20);
    }
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code).toBe(0);
    expect(readKept(log).equals(input)).toBe(true);
  });
});

describe('latency', () => {
  it('a line, and an unterminated line, reach the sandbox file within 100 ms', async () => {
    const { stdout } = makeSandbox();
    const helper = await spawnLogger({ log_filename: stdout, logrotate_options: 'rotate 1', max_size: '64KB' });
    await waitFor(() => existsSync(`${stdout}.logrotate.conf`));
    const delays: number[] = [];
    let size = 0;
    for (const text of ['first line\n', 'second\n', 'a partial line', ' completed\n', 'x'.repeat(5000) + '\n', 'tail']) {
      await helper.write(text);
      const start = performance.now();
      size += text.length;
      await waitFor(() => fileHas(stdout, size), { intervalMs: 1, timeoutMs: 2000 });
      delays.push(performance.now() - start);
      await sleep(20);
    }
    await helper.end();
    expect((await helper.exited).code).toBe(0);
    expect(Math.max(...delays), `delays ${delays.map(Math.round).join(', ')} ms`).toBeLessThan(100);
  });
});

describe('backpressure and memory', () => {
  it('a stalled sandbox holds the writer back instead of buffering in memory', async () => {
    const { stdout } = makeSandbox();
    // The first rotation's prerotate script stalls the sandbox for a second.
    const helper = await spawnLogger({
      log_filename: stdout,
      logrotate_options: `rotate 1\nprerotate\n  [ -e "$1.stalled" ] || { touch "$1.stalled"; sleep 1; }\nendscript`,
      max_size: '1MB',
    });
    const chunk = numberedLines(256, 1024);
    await helper.write(numberedLines(1025, 1024));
    let accepted = 0;
    const burst = (async () => {
      for (let i = 0; i < 256; i++) {
        await helper.write(chunk);
        accepted += chunk.length;
      }
    })();
    await sleep(600);
    const duringStall = accepted;
    const rss = procStatusKb(helper.pid, 'VmRSS');
    await burst;
    await helper.end();
    expect((await helper.exited).code).toBe(0);
    // Pipe buffer plus the writer's bounded queue, not the 64 MiB offered.
    expect(duringStall).toBeLessThan(8 * 1024 * 1024);
    expect(rss).toBeLessThan(100 * 1024);
    expect(finalStats(helper).bytesDropped).toBe(0);
  });

  it('peak RSS stays under 100 MB through a 160 MiB burst', async () => {
    const { stdout } = makeSandbox();
    const helper = await spawnLogger({ log_filename: stdout, logrotate_options: 'rotate 1', max_size: '8MB' });
    const chunk = numberedLines(1024, 1024, 'burst');
    for (let i = 0; i < 160; i++) await helper.write(chunk);
    const peakKb = procStatusKb(helper.pid, 'VmHWM');
    await helper.end();
    expect((await helper.exited).code).toBe(0);
    expect(finalStats(helper).bytesIn).toBe(160 * chunk.length);
    expect(peakKb).toBeLessThan(100 * 1024);
    const kept = readKept(stdout);
    expect(kept.length).toBeGreaterThan(8 * 1024 * 1024);
  });
});

describe('start-up cost', () => {
  /** The Node built-ins a helper had loaded when it exited (recorded by a --require'd script), with `config` or none. */
  async function builtinsLoaded(config?: string): Promise<string[]> {
    const { dir, stdout } = makeSandbox();
    const record = join(dir, 'modules');
    const preload = join(dir, 'record-modules.cjs');
    writeFileSync(
      preload,
      `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(record)}, process.moduleLoadList.join('\\n')));`,
    );
    const configFile = join(dir, 'config.yaml');
    if (config !== undefined) writeFileSync(configFile, config);
    const env = agentEnv({ NODE_OPTIONS: `--require=${preload}`, LOG_SPLITTER_CONFIG: configFile });
    const { helper, exit } = await pipeThrough({ log_filename: stdout }, Buffer.from('one line\n'), { env });
    expect(exit.code, helper.stderr()).toBe(0);
    return readFileSync(record, 'utf8')
      .split('\n')
      .filter((m) => m.startsWith('NativeModule '))
      .map((m) => m.slice('NativeModule '.length));
  }

  /** One syslog sink to a port where nothing listens: starting it is enough. */
  const syslogConfig = (transport: 'tls' | 'udp'): string =>
    `agent: {enrich: false}\nsinks:\n  s: {type: syslog, transport: ${transport}, host: localhost, port: 9}\n`;

  it('a sandbox-only helper loads no TLS, crypto, zlib or DNS code (about 1.5 MiB of RSS, see docs/performance.md)', async () => {
    const loaded = await builtinsLoaded();
    expect(loaded).toContain('net');
    expect(['tls', 'crypto', 'zlib', 'dns/promises'].filter((m) => loaded.includes(m))).toEqual([]);
  });

  it('a TLS syslog sink loads node:tls when it starts; a UDP one loads DNS for its first datagram', async () => {
    expect(await builtinsLoaded(syslogConfig('tls'))).toEqual(expect.arrayContaining(['tls', 'crypto']));
    const udp = await builtinsLoaded(syslogConfig('udp'));
    expect(udp).toContain('dns/promises');
    expect(udp).not.toContain('tls');
  });
});

describe('installed layout', () => {
  it('runs from a launcher_dir holding only the launcher and the bundle, with no node_modules', async () => {
    const launcherDir = mkdtempSync(join(tmpdir(), 'mls-libexec-'));
    try {
      copyFileSync(join(LAUNCHER_DIR, 'mesos-log-splitter.mjs'), join(launcherDir, 'mesos-log-splitter.mjs'));
      copyFileSync(LOGGER_BIN, join(launcherDir, 'mesos-logrotate-logger'));
      chmodSync(launcherDir, 0o755);
      chmodSync(join(launcherDir, 'mesos-logrotate-logger'), 0o755);
      const { stdout } = makeSandbox();
      const helper = await spawnPiped(join(launcherDir, 'mesos-logrotate-logger'), loggerArgv({ log_filename: stdout, logrotate_options: 'rotate 1', max_size: '4KB' }), {
        argv0: 'mesos-logrotate-logger',
        cwd: '/',
        env: { PATH: `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`, LIBPROCESS_IP: '127.0.0.1', LIBPROCESS_NUM_WORKER_THREADS: '8' },
      });
      const input = numberedLines(6, 1024);
      await helper.write(input);
      await helper.end();
      expect((await helper.exited).code, helper.stderr()).toBe(0);
      expect(readKept(stdout).equals(input)).toBe(true);
    } finally {
      rmSync(launcherDir, { recursive: true, force: true });
    }
  });
});
