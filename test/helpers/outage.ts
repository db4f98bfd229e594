// The shared "every drop is counted" property: a stream of numbered lines through the built helper in 64 KiB
// arrivals while the sink's receiver is killed and restarted at random points, then what arrived and what the helper
// counted must add up to what was written. Each sink's test supplies the receiver and its sink's config.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { chunks, numberedLines } from './data.js';
import { agentEnv } from './env.js';
import { makeSandbox } from './sandbox.js';
import { spawnLogger, type Diagnostic, type PipedProcess } from './spawn.js';
import { sleep } from './wait.js';

/** A sink's receiver, real or a test double, that the harness can kill and bring back. */
export interface KillableReceiver {
  /** Starts it (again); resolves once it takes connections or messages. */
  start(): Promise<void>;
  /** Stops it abruptly, as SIGKILL would: whatever it had not taken in is gone. Resolves once it is down. */
  kill(): Promise<void>;
  /** The sequence numbers of the lines it took in so far, duplicates included. */
  received(): number[];
}

export interface OutagePlan {
  /** Seeds every random choice: a failure replays with the same seed. */
  seed: number;
  lines: number;
  /** Each line's size, newline included; numbered as numberedLines writes them. */
  lineBytes: number;
  /** Label that starts each line, before its sequence number. */
  label: string;
  /** Kills in the run. */
  outages: number;
  /** Each downtime is uniform in [0, maxDowntimeMs]. */
  maxDowntimeMs: number;
  /** Pause after each 64 KiB arrival, uniform in [0, maxPauseMs]. */
  maxPauseMs: number;
}

/** What the run did, for the assertions and for a failure message. */
export interface OutageRun {
  input: Buffer;
  /** [kill, restart] times, ms since the epoch, and the lines written by then. */
  outages: { downAt: number; upAt: number; downtimeMs: number; linesAtDown: number; linesAtUp: number }[];
}

export const ARRIVAL_BYTES = 64 * 1024;

/** The outages of every sink's run: three of up to 3 s each keep three seeds side by side well under a minute. */
export const OUTAGES = { outages: 3, maxDowntimeMs: 3000 } as const;

/** A small seeded generator (mulberry32): uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The helper as the agent starts it, for executor `executorId` (E1) in sandbox `work` (a new one), with `sink` as its
 * one sink. After a 3 s outage (the longest of OUTAGES) the retries back off up to 1.6 s, and the backlog then takes a
 * while: the stream's end waits up to 20 s for them.
 */
export function startHelperWithSink(
  sink: Record<string, unknown>,
  where: { work?: string; executorId?: string } = {},
): Promise<PipedProcess> {
  const work = where.work ?? makeSandbox().dir;
  const logFilename = join(work, `slaves/S1/frameworks/F1/executors/${where.executorId ?? 'E1'}/runs/C1/stdout`);
  mkdirSync(dirname(logFilename), { recursive: true });
  const configFile = join(work, 'config.yaml');
  writeFileSync(configFile, JSON.stringify({ agent: { enrich: false }, shutdown_timeout_ms: 20_000, sinks: { fwd: sink } }));
  return spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: agentEnv({ LOG_SPLITTER_CONFIG: configFile }) });
}

/** Ends the helper's input, expects it to exit 0, and returns its sink summary. */
export async function endAndSummarize(helper: PipedProcess): Promise<Diagnostic> {
  await helper.end();
  const exit = await helper.exited;
  expect(exit.code, helper.stderr()).toBe(0);
  const summary = helper.diagnostics().find((d) => d.msg === 'sink summary');
  expect(summary, helper.stderr()).toBeDefined();
  return summary!;
}

/**
 * Writes the plan's lines into the helper in 64 KiB arrivals (each pipe write is one arrival; the helper reads up to
 * 64 KiB at a time) while, alongside, the receiver is killed at random points and restarted after a random downtime.
 * The receiver is up again when this returns; the input is not ended.
 */
export async function streamWithOutages(helper: PipedProcess, receiver: KillableReceiver, plan: OutagePlan): Promise<OutageRun> {
  const random = seededRandom(plan.seed);
  const input = numberedLines(plan.lines, plan.lineBytes, plan.label);
  const arrivals = chunks(input, ARRIVAL_BYTES);
  const pauses = arrivals.map(() => Math.round(random() * plan.maxPauseMs));
  const writingMs = pauses.reduce((sum, ms) => sum + ms, 0);
  // Kills at random times across the writing, each after the previous restart.
  const downtimes = Array.from({ length: plan.outages }, () => Math.round(random() * plan.maxDowntimeMs));
  const gaps = Array.from({ length: plan.outages }, () => random() * (writingMs / plan.outages));
  const run: OutageRun = { input, outages: [] };
  let written = 0;
  const writing = (async () => {
    for (let i = 0; i < arrivals.length; i++) {
      await helper.write(arrivals[i]);
      written += arrivals[i].length;
      await sleep(pauses[i]);
    }
  })();
  const faults = (async () => {
    for (let k = 0; k < plan.outages; k++) {
      await sleep(gaps[k]);
      const linesAtDown = Math.floor(written / plan.lineBytes);
      const downAt = Date.now();
      await receiver.kill();
      await sleep(downtimes[k]);
      await receiver.start();
      run.outages.push({ downAt, upAt: Date.now(), downtimeMs: downtimes[k], linesAtDown, linesAtUp: Math.floor(written / plan.lineBytes) });
    }
  })();
  await Promise.all([writing, faults]);
  return run;
}

/** Sequence numbers in [0, total) the receiver never took. */
export function missingLines(received: number[], total: number): number[] {
  const seen = new Uint8Array(total);
  for (const n of received) if (n >= 0 && n < total) seen[n] = 1;
  const missing: number[] = [];
  for (let i = 0; i < total; i++) if (seen[i] === 0) missing.push(i);
  return missing;
}

/** The lines a sink summary counts as dropped, all reasons together. */
export const countedDrops = (summary: Diagnostic): number => summary.linesDropped as number;

/**
 * The property: lines received (each once, however often it came) plus lines the summary counts as dropped equal
 * the lines written, and the summary counts every line written as sent, dropped or still buffered (none here).
 */
export function expectEveryLineAccounted(summary: Diagnostic, received: number[], run: OutageRun, total: number): void {
  const missing = missingLines(received, total);
  const context = { outages: run.outages, missing: missing.length, firstMissing: missing.slice(0, 5), summary };
  expect(summary.linesIn, JSON.stringify(context)).toBe(total);
  expect(summary.bufferedLines, JSON.stringify(context)).toBe(0);
  expect(total - missing.length + countedDrops(summary), JSON.stringify(context)).toBe(total);
}
