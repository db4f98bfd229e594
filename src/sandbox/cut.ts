const NEWLINE = 0x0a;

/**
 * How many bytes of `data[start..]` still go into the current file before it must rotate. The caller has
 * established that the rest does not fit in `room`. Cuts fall after a newline when one fits and leaves the file at
 * least `minFill` bytes; a file already holding `minFill` and ending on a line boundary rotates first; otherwise
 * the line is longer than a whole file, already started in this one (`midLine`), or logrotate needs the file past
 * its threshold, and it is cut at the limit.
 */
export function chooseCut(
  data: Buffer,
  start: number,
  room: number,
  size: number,
  minFill: number,
  midLine: boolean,
): number {
  const newline = room > 0 ? data.lastIndexOf(NEWLINE, start + room - 1) : -1;
  if (newline >= start && size + (newline + 1 - start) >= minFill) return newline + 1 - start;
  if (size > 0 && size >= minFill && !midLine) return 0;
  return room;
}
