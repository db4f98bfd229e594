// The journald sink through the built helper against a private journald that is killed (SIGKILL: its socket and
// whatever sat unread in the socket's queue die with it) and restarted while 64 KiB arrivals stream in: what reached
// the journal plus what the helper counts as dropped must be every line written.
import { afterAll, describe, expect, it } from 'vitest';
import { TestJournald } from './helpers/journald.js';
import {
  endAndSummarize,
  expectEveryLineAccounted,
  OUTAGES,
  startHelperWithSink,
  streamWithOutages,
  type KillableReceiver,
  type OutagePlan,
} from './helpers/outage.js';

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

describe('journald sink: every line is received or counted as dropped, whatever the outages', () => {
  const SEEDS = [1, 2, 3];
  const plan = (seed: number, label: string): OutagePlan => ({
    seed,
    label,
    // 1.5 MB: well inside the 8 MB buffer, so no outage may cost a line.
    lines: 15_000,
    lineBytes: 100,
    ...OUTAGES,
    maxPauseMs: 10,
  });

  it(`seeds ${SEEDS.join(', ')} side by side: nothing lost, nothing dropped`, async () => {
    await Promise.all(
      SEEDS.map(async (seed) => {
        const label = `prop-journald-${seed}`;
        const executorId = `E-${process.pid}-${label}`;
        const receiver = new JournalReceiver(executorId);
        await receiver.start();
        const helper = await startHelperWithSink({ type: 'journald', socket: receiver.journald.socket }, { executorId });
        const run = await streamWithOutages(helper, receiver, plan(seed, label));
        const summary = await endAndSummarize(helper);
        const total = plan(seed, label).lines;
        await receiver.collect(total);
        expectEveryLineAccounted(summary, receiver.received(), run, total);
        expect(summary.linesDropped).toBe(0);
      }),
    );
  });
});
