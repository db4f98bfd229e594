// A private systemd-journald for the helper+journald variant of bench/run.mjs, as test/helpers/journald.ts starts one
// for the tests: a journal namespace (`systemd-journald NS`, sockets in /run/systemd/journal.NS/), volatile storage,
// rate limit off, so it never touches a journald the machine runs. Needs root and the systemd package.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const JOURNALD_BIN = ['/lib/systemd/systemd-journald', '/usr/lib/systemd/systemd-journald'].find((path) => existsSync(path));
let instances = 0;
/** Clock ticks per second in /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

const connects = (path) =>
  new Promise((resolve) => {
    const socket = createConnection({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** Starts one; resolves once its stream socket accepts connections, with { namespace, socket, cpuMs(), stop() }. */
export async function startJournald() {
  if (JOURNALD_BIN === undefined) throw new Error('systemd-journald is not installed (apt-get install systemd)');
  const namespace = `mlsbench${process.pid}x${instances++}`;
  const config = `/etc/systemd/journald@${namespace}.conf`;
  const dir = `/run/systemd/journal.${namespace}`;
  writeFileSync(config, '[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nForwardToSyslog=no\nForwardToWall=no\n');
  const child = spawn(JOURNALD_BIN, [namespace], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const started = Date.now();
  while (!(await connects(`${dir}/stdout`))) {
    if (child.exitCode !== null || Date.now() - started > 10_000) throw new Error(`journald ${namespace} did not start`);
    await sleep(20);
  }
  return {
    namespace,
    socket: `${dir}/socket`,
    /** CPU time (user + system) journald has used so far. */
    cpuMs() {
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'latin1').split(') ')[1].split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
    },
    /** Stops it and removes its config, sockets and journal files. */
    async stop() {
      child.kill('SIGKILL');
      await exited;
      rmSync(config, { force: true });
      rmSync(dir, { recursive: true, force: true });
      const machineId = readFileSync('/etc/machine-id', 'utf8').trim();
      rmSync(`/run/log/journal/${machineId}.${namespace}`, { recursive: true, force: true });
    },
  };
}

/**
 * How many of its entries have the field values `match` (journald logs a few of its own): `journalctl -o cat` prints
 * one line per entry, counted as it streams.
 */
export function countEntries(namespace, match) {
  return new Promise((resolve, reject) => {
    const args = [`--namespace=${namespace}`, '-o', 'cat', '--all', '--no-pager', '-q', ...Object.entries(match).map(([k, v]) => `${k}=${v}`)];
    const child = spawn('journalctl', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let entries = 0;
    child.stdout.on('data', (chunk) => {
      for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) entries++;
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(entries) : reject(new Error(`journalctl exited with ${code}`))));
  });
}
