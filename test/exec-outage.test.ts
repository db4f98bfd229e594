// The exec sink through the built helper while its process is SIGKILLed at random points and kept from starting for
// a random downtime (every restart in it exits at once), as 64 KiB arrivals stream in: what the processes wrote
// out plus what the helper counts as dropped must be every line written.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAlive, readIfExists, writeScript } from './helpers/exec.js';
import {
  endAndSummarize,
  expectEveryLineAccounted,
  OUTAGES,
  startHelperWithSink,
  streamWithOutages,
  type KillableReceiver,
  type OutagePlan,
} from './helpers/outage.js';
import { makeSandbox } from './helpers/sandbox.js';
import { sleep } from './helpers/wait.js';

const LINE_BYTES = 100;

/**
 * The exec process as the harness's receiver: `cat` appending to $OUT/received. While $OUT/down exists, a restarted
 * process exits 1 at once, so the sink backs off and retries as it would for a forwarder whose destination is down.
 */
class CatReceiver implements KillableReceiver {
  readonly script: string;

  constructor(private readonly dir: string) {
    this.script = writeScript(dir, 'receiver.sh', '[ -e "$OUT/down" ] && exit 1\necho $$ > "$OUT/pid"\nexec cat >> "$OUT/received"');
  }

  async start(): Promise<void> {
    rmSync(join(this.dir, 'down'), { force: true });
  }

  /** Keeps restarts from starting, then SIGKILLs the process until none that started before is left. */
  async kill(): Promise<void> {
    writeFileSync(join(this.dir, 'down'), '');
    for (let last = -1; ; ) {
      const pid = Number(readIfExists(join(this.dir, 'pid')).toString());
      if (pid > 0 && isAlive(pid)) {
        process.kill(pid, 'SIGKILL');
        while (isAlive(pid)) await sleep(5);
      }
      if (pid === last) return;
      last = pid;
      // A process that passed the check just before `down` appeared writes its pid a moment later.
      await sleep(20);
    }
  }

  /**
   * Sequence numbers of the whole lines in $OUT/received. A killed cat may have written part of a line; the next
   * process starts at a line start (the replay), so that part runs into the next line, which then is longer than a
   * line and ends with a whole one.
   */
  received(): number[] {
    const path = join(this.dir, 'received');
    if (!existsSync(path)) return [];
    const numbers: number[] = [];
    for (const segment of readIfExists(path).toString('latin1').split('\n')) {
      if (segment.length < LINE_BYTES - 1) continue;
      numbers.push(Number(segment.slice(segment.length - (LINE_BYTES - 1)).split(' ')[1]));
    }
    return numbers;
  }
}

describe('exec sink: every line is received or counted as dropped, whatever the outages', () => {
  const SEEDS = [1, 2, 3];
  const plan = (seed: number, label: string): OutagePlan => ({
    seed,
    label,
    // 3 MB: well inside the 8 MB buffer, so no outage may cost a line.
    lines: 30_000,
    lineBytes: LINE_BYTES,
    ...OUTAGES,
    maxPauseMs: 10,
  });

  it(`seeds ${SEEDS.join(', ')} side by side: nothing lost, nothing dropped`, async () => {
    await Promise.all(
      SEEDS.map(async (seed) => {
        const label = `prop-exec-${seed}`;
        const work = makeSandbox().dir;
        const receiver = new CatReceiver(work);
        const sink = { type: 'exec', command: [receiver.script], restart_backoff_ms: { min: 100, max: 1000 } };
        const helper = await startHelperWithSink(sink, { work });
        const run = await streamWithOutages(helper, receiver, plan(seed, label));
        const summary = await endAndSummarize(helper);
        expectEveryLineAccounted(summary, receiver.received(), run, plan(seed, label).lines);
        expect(summary.linesDropped).toBe(0);
      }),
    );
  });
});
