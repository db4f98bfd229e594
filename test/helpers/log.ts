import { Writable } from 'node:stream';
import pino from 'pino';
import type { Logger } from '../../src/diagnostics.js';

/** A pino logger whose JSON lines the test can read back. */
export function captureLog(): { log: Logger; entries: () => Record<string, unknown>[]; lines: () => string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), entries: () => lines.map((line) => JSON.parse(line)), lines: () => [...lines] };
}
