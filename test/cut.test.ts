// The cut rule on its own: where a batch that does not fit is split before the file rotates.
import { describe, expect, it } from 'vitest';
import { chooseCut } from '../src/sandbox/cut.js';

const data = Buffer.from('aaaa\nbbbb\ncccccccccccccccccccc');

describe('chooseCut', () => {
  it('cuts after the last newline that fits', () => {
    expect(chooseCut(data, 0, 12, 0, 1, false)).toBe(10);
  });

  it('rotates first when nothing fits and the file ends on a line boundary', () => {
    expect(chooseCut(data, 10, 8, 100, 1, false)).toBe(0);
  });

  it('fills to the limit when the file already ends inside the line that continues', () => {
    expect(chooseCut(data, 10, 8, 100, 1, true)).toBe(8);
  });

  it('cuts a line longer than a whole file at the limit', () => {
    expect(chooseCut(data, 10, 8, 0, 1, false)).toBe(8);
  });

  it('in logrotate mode, a line boundary must leave the file past the threshold', () => {
    expect(chooseCut(data, 0, 12, 0, 11, false)).toBe(12);
    expect(chooseCut(data, 0, 12, 0, 10, false)).toBe(10);
  });
});
