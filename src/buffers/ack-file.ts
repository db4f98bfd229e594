import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** The first record not yet acknowledged: everything before it (older segments, and this one up to offset) is. */
export interface AckPosition {
  segment: number;
  offset: number;
}

const ACK_FILE = 'ack';

/**
 * The acknowledged position, kept in a small file replaced atomically (written beside, synced, renamed over): a
 * crash leaves the old position or the new one, never a mix. A stale one only means lines are delivered again.
 */
export async function readAck(dir: string): Promise<AckPosition | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, ACK_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const position = JSON.parse(text) as Partial<AckPosition>;
  if (!Number.isSafeInteger(position.segment) || !Number.isSafeInteger(position.offset)) {
    throw new Error(`not an acknowledged position: ${text.slice(0, 100)}`);
  }
  return position as AckPosition;
}

export async function writeAck(dir: string, position: AckPosition): Promise<void> {
  const temporary = join(dir, `${ACK_FILE}.tmp`);
  const handle = await open(temporary, 'w', 0o600);
  try {
    await handle.writeFile(JSON.stringify(position));
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(temporary, join(dir, ACK_FILE));
}

export async function removeAck(dir: string): Promise<void> {
  await unlink(join(dir, ACK_FILE)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
