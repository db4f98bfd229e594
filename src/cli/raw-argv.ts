import { readFileSync } from 'node:fs';

/**
 * `args`, this process's last arguments, as the bytes it was given. process.argv holds them decoded as UTF-8, which
 * turns bytes that are not UTF-8 into U+FFFD; /proc/self/cmdline still holds the bytes (Node's own options come
 * before the script, so ours are its last entries). Where /proc does not show these same arguments, their UTF-8.
 */
export function rawArguments(args: string[]): Buffer[] {
  const fallback = args.map((arg) => Buffer.from(arg));
  if (args.length === 0) return fallback;
  let cmdline: Buffer;
  try {
    cmdline = readFileSync('/proc/self/cmdline');
  } catch {
    return fallback;
  }
  // Each argument ends with a NUL.
  const all: Buffer[] = [];
  for (let start = 0, end = cmdline.indexOf(0); end >= 0; start = end + 1, end = cmdline.indexOf(0, start)) {
    all.push(cmdline.subarray(start, end));
  }
  const raw = all.slice(-args.length);
  // Setting process.title, for one, rewrites that memory.
  const same = raw.length === args.length && raw.every((bytes, i) => bytes.toString() === args[i]);
  return same ? raw : fallback;
}
