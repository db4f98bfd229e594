import { renameSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';
import { chunks } from './data.js';
import { readIfExists } from './exec.js';
import type { PipedProcess } from './spawn.js';
import { sleep, waitFor } from './wait.js';

/**
 * Replaces the config as an operator should: write a new file, rename it over the old. (Written in place, a SIGHUP
 * can catch the file empty, which is a valid sandbox-only config.)
 */
export function replaceConfig(path: string, text: string): void {
  writeFileSync(`${path}.new`, text);
  renameSync(`${path}.new`, path);
}

/** Writes `data` into the helper's pipe and waits until its sandbox file `log` holds everything written so far. */
export async function writeThrough(helper: PipedProcess, log: string, data: Buffer): Promise<void> {
  await helper.write(data);
  const { bytes } = helper.written();
  await waitFor(() => readIfExists(log).length === bytes, { timeoutMs: 10_000, what: 'the sandbox to catch up' });
}

const RELOAD_MESSAGES = ['config reloaded', 'config reload failed; keeping the running config'];
const handledReloads = (helper: PipedProcess): number =>
  helper.diagnostics().filter((d) => RELOAD_MESSAGES.includes(d.msg)).length;

/**
 * Streams `input` in 64 KiB chunks over ~2 s while sending SIGHUP every 20 ms (after `change`). Returns how many
 * reloads the helper handled: signals sent while one is still pending merge into one, as POSIX allows.
 */
export async function streamWithSighups(helper: PipedProcess, log: string, input: Buffer, change: () => void): Promise<number> {
  const parts = chunks(input, 65536);
  // The first chunk is through before the first SIGHUP: the handler is installed by the time data flows.
  await writeThrough(helper, log, parts[0]);
  const before = handledReloads(helper);
  let sent = 0;
  const timer = setInterval(() => {
    change();
    process.kill(helper.pid, 'SIGHUP');
    sent++;
  }, 20);
  try {
    for (const part of parts.slice(1)) {
      await helper.write(part);
      await sleep(10);
    }
  } finally {
    clearInterval(timer);
  }
  // Settled: no new reload for 300 ms.
  let last = -1;
  while (handledReloads(helper) !== last) {
    last = handledReloads(helper);
    await sleep(300);
  }
  const handled = last - before;
  expect(handled).toBeLessThanOrEqual(sent);
  expect(handled).toBeGreaterThan(sent / 2);
  return handled;
}

/**
 * Streams input[0, half) with SIGHUPs that keep `config` (`configFile` holds it at the start), then the rest with
 * SIGHUPs that alternate `changed` and `config`. `half` must fall after a newline. Returns the reloads handled.
 */
export async function streamKeepingThenChanging(
  helper: PipedProcess,
  log: string,
  input: Buffer,
  half: number,
  configFile: string,
  config: string,
  changed: string,
): Promise<number> {
  const kept = await streamWithSighups(helper, log, input.subarray(0, half), () => replaceConfig(configFile, config));
  let n = 0;
  const changes = await streamWithSighups(helper, log, input.subarray(half), () =>
    replaceConfig(configFile, ++n % 2 === 0 ? config : changed),
  );
  return kept + changes;
}
