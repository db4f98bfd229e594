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
  // The agent's pipe2() is a system call; the test's FIFOs take a process each, so they are made beforehand.
  const pipes = [];
  for (let i = 0; i < STREAMS; i++) pipes.push(await makePipe());
  const streams: { stdout: string; helper: PipedProcess }[] = [];
  const started = Date.now();
  for (const [i, pipe] of pipes.entries()) {
    const { stdout } = makeSandbox();
    const helper = await spawnLogger({ log_filename: stdout }, { env: daemon.shimEnv('daemon'), pipe });
    void helper.write(`stream ${i} first line\n`);
    streams.push({ stdout, helper });
  }
  const spawnedMs = Date.now() - started;
  const serving = (s: { stdout: string }): boolean => existsSync(s.stdout) && statSync(s.stdout).size > 0;
  await waitFor(() => streams.every(serving), { timeoutMs: 30_000, what: `all ${STREAMS} streams to write their first line` });
  const servedMs = Date.now() - started;
  console.log(`${STREAMS} streams: spawned in ${spawnedMs} ms, all writing after ${servedMs} ms`);
  expect(servedMs).toBeLessThan(10_000);
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
