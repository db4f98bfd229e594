import { execFileSync } from 'node:child_process';
import { constants, mkdtempSync, open, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const openAsync = promisify(open);

/**
 * A real kernel pipe, both ends blocking, as the agent's pipe2() makes. Node's stdio 'pipe' is a socketpair, so the
 * pipe is made as a FIFO: each blocking open() waits for the other end, so both run at once in the thread pool. The
 * FIFO's name is removed straight away; the two descriptors are all that is left of it.
 */
export async function makePipe(): Promise<{ readFd: number; writeFd: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'mls-pipe-'));
  try {
    const path = join(dir, 'fifo');
    execFileSync('mkfifo', ['-m', '600', path]);
    const [readFd, writeFd] = await Promise.all([
      openAsync(path, constants.O_RDONLY),
      openAsync(path, constants.O_WRONLY),
    ]);
    return { readFd, writeFd };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
