// Mesos (stout) byte syntax: digits plus B/KB/MB/GB/TB in any case, 1024-based.
const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

export function parseBytes(text: string): number {
  const match = /^(\d*)(.*)$/s.exec(text)!;
  const [, digits, rest] = match;
  if (rest.startsWith('.')) throw new Error(`Fractional bytes '${text}'`);
  if (digits === '' || rest === '') throw new Error(`Invalid bytes '${text}'`);
  const unit = UNITS[rest.toUpperCase()];
  if (unit === undefined) throw new Error(`Unknown bytes unit '${rest.toUpperCase()}'`);
  const value = Number(digits) * unit;
  if (!Number.isSafeInteger(value)) throw new Error(`Bytes '${text}' out of range`);
  return value;
}

/** The largest exact unit, as the agent writes sizes: 0B, 4097B, 512KB, 10MB. */
export function formatBytes(bytes: number): string {
  for (const unit of ['TB', 'GB', 'MB', 'KB']) {
    if (bytes > 0 && bytes % UNITS[unit] === 0) return `${bytes / UNITS[unit]}${unit}`;
  }
  return `${bytes}B`;
}
