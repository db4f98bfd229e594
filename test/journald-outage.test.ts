// The journald sink through the built helper against a private journald that is killed (SIGKILL: its socket and
// whatever sat unread in the socket's queue die with it) and restarted while 64 KiB arrivals stream in: what reached
// the journal plus what the helper counts as dropped must be every line written.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agentEnv } from './helpers/env.js';
import { TestJournald } from './helpers/journald.js';
import { expectEveryLineAccounted, streamWithOutages, type KillableReceiver, type OutagePlan } from './helpers/outage.js';
import { makeSandbox } from './helpers/sandbox.js';
import { spawnLogger, type PipedProcess } from './helpers/spawn.js';

const instances: TestJournald[] = [];
afterAll(async () => {
  for (const journald of instances) await journald.remove();
});

/** A private journald as the harness's receiver; `collect()` reads back the numbers of one executor's entries. */
class JournalReceiver implements KillableReceiver {
  readonly journald = new TestJournald();
  private numbers: number[] = [];

  constructor(private readonly executorId: string) {
    instances.push(this.journald);
  }

  start(): Promise<void> {
    return this.journald.start();
  }

  kill(): Promise<void> {
    return this.journald.kill();
  }

  received(): number[] {
    return this.numbers;
  }

  /**
   * Keeps the sequence numbers of the executor's entries once the journal holds `count` of them (duplicates count),
   * or what it holds after 10 s: the assertions then name what is missing.
   */
  async collect(count: number): Promise<void> {
    const match = { EXECUTOR_ID: this.executorId };
    const entries = await this.journald.waitForEntries(match, count).catch(() => this.journald.entries(match));
    this.numbers = entries.map((entry) => Number(String(entry.MESSAGE).split(' ')[1]));
  }
}

/** The helper as the agent starts it, with one journald sink to the receiver's journald. */
function startHelper(receiver: JournalReceiver, executorId: string): Promise<PipedProcess> {
  const work = makeSandbox().dir;
  const logFilename = join(work, `slaves/S1/frameworks/F1/executors/${executorId}/runs/C1/stdout`);
  mkdirSync(dirname(logFilename), { recursive: true });
  const configFile = join(work, 'config.yaml');
  // After a 3 s outage the retries back off up to 1.6 s, and the backlog then takes a while: the stream's end waits.
  writeFileSync(
    configFile,
    JSON.stringify({ agent: { enrich: false }, shutdown_timeout_ms: 20_000, sinks: { journal: { type: 'journald', socket: receiver.journald.socket } } }),
  );
  return spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: agentEnv({ LOG_SPLITTER_CONFIG: configFile }) });
}

describe('journald sink: every line is received or counted as dropped, whatever the outages', () => {
  const SEEDS = [1, 2, 3];
  const plan = (seed: number, label: string): OutagePlan => ({
    seed,
    label,
    // 1.5 MB: well inside the 8 MB buffer, so no outage may cost a line.
    lines: 15_000,
    lineBytes: 100,
    outages: 3,
    maxDowntimeMs: 3000,
    maxPauseMs: 10,
  });

  it(`seeds ${SEEDS.join(', ')} side by side: nothing lost, nothing dropped`, async () => {
    await Promise.all(
      SEEDS.map(async (seed) => {
        const label = `prop-journald-${seed}`;
        const executorId = `E-${process.pid}-${label}`;
        const receiver = new JournalReceiver(executorId);
        await receiver.start();
        const helper = await startHelper(receiver, executorId);
        const run = await streamWithOutages(helper, receiver, plan(seed, label));
        await helper.end();
        const exit = await helper.exited;
        expect(exit.code, helper.stderr()).toBe(0);
        const summary = helper.diagnostics().find((d) => d.msg === 'sink summary');
        expect(summary, helper.stderr()).toBeDefined();
        const total = plan(seed, label).lines;
        await receiver.collect(total);
        expectEveryLineAccounted(summary!, receiver.received(), run, total);
        expect(summary!.linesDropped).toBe(0);
      }),
    );
  });
});
