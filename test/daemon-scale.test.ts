// Issue 15: one daemon serves an agent's streams at the scale of a busy agent. 500 drop-ins handed over one after
// another, as an agent launching 250 tasks does, are all writing to their sandboxes within 10 s, through one worker.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { killDaemons, makeDaemon } from './helpers/daemon.js';
import { makePipe } from './helpers/pipe.js';
import { makeSandbox } from './helpers/sandbox.js';
import { spawnLogger, type PipedProcess } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';

afterAll(killDaemons);

const STREAMS = 500;

it(`serves ${STREAMS} streams handed over in a row within 10 s, in one worker, and ends each cleanly`, { timeout: 120_000 }, async () => {
  const daemon = makeDaemon();
  await daemon.start();
  // The agent's pipe2() is a system call; the test's pipes take a process each, so they are made beforehand.
  const pipes = [];
  for (let i = 0; i < STREAMS; i++) pipes.push(await makePipe());
  const streams: { stdout: string; helper: PipedProcess; spawnedAt: number; servedAt?: number }[] = [];
  const serving = (s: { stdout: string }): boolean => existsSync(s.stdout) && statSync(s.stdout).size > 0;
  // When each stream's first line reached its sandbox, seen within 20 ms.
  const watch = setInterval(() => {
    for (const s of streams) if (s.servedAt === undefined && serving(s)) s.servedAt = Date.now();
  }, 20);
  const started = Date.now();
  try {
    for (const [i, pipe] of pipes.entries()) {
      const { stdout } = makeSandbox();
      const spawnedAt = Date.now();
      const helper = await spawnLogger({ log_filename: stdout }, { env: daemon.shimEnv('daemon'), pipe });
      void helper.write(`stream ${i} first line\n`);
      streams.push({ stdout, helper, spawnedAt });
    }
    await waitFor(() => streams.every((s) => s.servedAt !== undefined), { timeoutMs: 30_000, what: `all ${STREAMS} streams to write their first line` });
  } finally {
    clearInterval(watch);
  }
  const servedMs = Math.max(...streams.map((s) => s.servedAt!)) - started;
  const latencies = streams.map((s) => s.servedAt! - s.spawnedAt).sort((a, b) => a - b);
  const spawnedMs = streams[STREAMS - 1].spawnedAt - started;
  console.log(`${STREAMS} streams: spawned in ${spawnedMs} ms, all writing after ${servedMs} ms; spawn to first line: median ${latencies[STREAMS >> 1]} ms, max ${latencies[STREAMS - 1]} ms`);
  // The agent's own spawning (here the test's: a fork of this Node process per drop-in, seconds on a loaded 2-core
  // machine) is not the daemon's to speed up: each stream is served within 10 s of its spawn, and all are within
  // 10 s of the last spawn.
  expect(latencies[STREAMS - 1]).toBeLessThan(10_000);
  expect(servedMs - spawnedMs).toBeLessThan(10_000);
  expect(daemon.workerPids()).toHaveLength(1);

  await Promise.all(streams.map(async ({ helper }, i) => {
    await helper.write(`stream ${i} last line\n`);
    await helper.end();
  }));
  const exits = await Promise.all(streams.map(({ helper }) => helper.exited));
  expect(exits.filter((exit) => exit.code !== 0)).toEqual([]);
  for (const [i, { stdout }] of streams.entries()) {
    expect(readFileSync(stdout, 'utf8')).toBe(`stream ${i} first line\nstream ${i} last line\n`);
  }
  expect(daemon.diagnostics().filter((d) => d.level >= 50)).toEqual([]);
});
