// The built helper with one sink (`out`), as the agent starts it, for a sink's end-to-end tests.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { chunks } from './data.js';
import { agentEnv } from './env.js';
import { makeSandbox } from './sandbox.js';
import { expectSummaryAddsUp, LAUNCHER_DIR, spawnLogger, type Diagnostic, type PipedProcess } from './spawn.js';

/** The pipe's arrivals, as a busy task's writes reach the helper. */
export const ARRIVAL_BYTES = 64 * 1024;

/**
 * Starts the helper on a Mesos sandbox path (agent S1, framework F1, executor E1, container C1: the ids come from
 * it), enrichment off, lines cut at 1 KB, with `sink` as sink `out` (and `others` beside it).
 */
export async function startHelper(
  sink: Record<string, unknown>,
  shutdownMs = 5000,
  others: Record<string, Record<string, unknown>> = {},
): Promise<{ helper: PipedProcess; logFilename: string }> {
  const work = makeSandbox().dir;
  const logFilename = join(work, 'slaves/S1/frameworks/F1/executors/E1/runs/C1/stdout');
  mkdirSync(dirname(logFilename), { recursive: true });
  const configFile = join(work, 'config.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({ agent: { enrich: false }, lines: { max_line_bytes: '1KB' }, shutdown_timeout_ms: shutdownMs, sinks: { out: sink, ...others } }),
  );
  const helper = await spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: agentEnv({ LOG_SPLITTER_CONFIG: configFile }) });
  return { helper, logFilename };
}

/** Writes `input` in 64 KiB arrivals. */
export async function writeArrivals(helper: PipedProcess, input: Buffer): Promise<void> {
  for (const chunk of chunks(input, ARRIVAL_BYTES)) await helper.write(chunk);
}

/** Ends the input; the helper must exit 0 with the sandbox byte-exact and its counters adding up. Returns `out`'s summary. */
export async function finish(helper: PipedProcess, logFilename: string, input: Buffer): Promise<Diagnostic> {
  await helper.end();
  const exit = await helper.exited;
  expect(exit.code, helper.stderr()).toBe(0);
  expect(readFileSync(logFilename).equals(input)).toBe(true);
  const summary = helper.diagnostics().find((d) => d.msg === 'sink summary' && d.sink === 'out');
  expectSummaryAddsUp(summary, helper.written());
  return summary!;
}

/** Every number 0..total-1 arrived (duplicates allowed), and their first arrivals are in order. */
export function expectAllInOrder(numbers: number[], total: number): void {
  const seen = new Set<number>();
  const firsts: number[] = [];
  for (const n of numbers) {
    if (!seen.has(n)) firsts.push(n);
    seen.add(n);
  }
  expect(firsts.length).toBe(total);
  expect(firsts.findIndex((n, i) => n !== i)).toBe(-1);
}

/** `mesos-log-splitter check-config FILE`. */
export function checkConfigFile(path: string): { code: number | null; stdout: string; stderr: string } {
  const env = agentEnv();
  delete env.LOG_SPLITTER_CONFIG;
  const result = spawnSync(join(LAUNCHER_DIR, 'mesos-log-splitter'), ['check-config', path], { env, encoding: 'utf8', timeout: 20_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** check-config on a config whose one sink is `sink` (as `out`). */
export function checkSinkConfig(sink: Record<string, unknown>): { code: number | null; stdout: string; stderr: string } {
  const path = join(makeSandbox().dir, 'config.yaml');
  writeFileSync(path, JSON.stringify({ sinks: { out: sink } }));
  return checkConfigFile(path);
}
