import { spawn } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';

/**
 * A real anonymous kernel pipe, both ends blocking, as the agent's pipe2() makes. Node makes none (its stdio 'pipe' is
 * a socketpair), so a perl process makes one and the test opens both ends through /proc/<perl>/fd before it exits.
 * Not a FIFO: the daemon reopens the shim's stdin through /proc/<shim>/fd/0, and Linux never reports the hang-up to a
 * FIFO reader opened after the FIFO's writers all closed, so a test that closed its end before the hand-over would
 * wait forever for an end of stream that an agent's pipe always gets.
 */
export async function makePipe(): Promise<{ readFd: number; writeFd: number }> {
  const maker = spawn('perl', ['-e', '$| = 1; pipe(R, W) or die "pipe: $!\\n"; print fileno(R), " ", fileno(W), "\\n"; <STDIN>'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  // Its first line, "<read fd> <write fd>" (or whatever it said before it exited).
  let said = '';
  const answered = new Promise<string>((resolve, reject) => {
    maker.once('error', reject);
    maker.stdout!.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes('\n')) resolve(said.slice(0, said.indexOf('\n')));
    });
    maker.once('close', () => resolve(said));
  });
  const exited = new Promise<void>((resolve) => {
    maker.once('error', () => resolve());
    maker.once('close', () => resolve());
  });
  try {
    const line = await answered;
    const ends = /^(\d+) (\d+)$/.exec(line);
    if (ends === null) throw new Error(`perl made no pipe (it said ${JSON.stringify(line)})`);
    const readFd = openSync(`/proc/${maker.pid}/fd/${ends[1]}`, constants.O_RDONLY);
    try {
      return { readFd, writeFd: openSync(`/proc/${maker.pid}/fd/${ends[2]}`, constants.O_WRONLY) };
    } catch (err) {
      closeSync(readFd);
      throw err;
    }
  } finally {
    maker.stdin!.end();
    await exited;
  }
}
