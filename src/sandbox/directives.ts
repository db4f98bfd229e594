/**
 * Reads the logrotate directives an operator passes through --logrotate_options and decides whether the helper can
 * rotate natively (same file names and effects as logrotate) or must run the real logrotate, as the original does.
 */
export interface RotationPolicy {
  /** Old files kept; logrotate keeps none when `rotate` is absent. KEEP_ALL: none is ever removed. */
  rotate: number;
  compress: boolean;
  delaycompress: boolean;
  /** Undefined when off: logrotate reads `maxage 0` as no limit. */
  maxageDays: number | undefined;
  missingok: boolean;
  copytruncate: boolean;
  create: CreateDirective | undefined;
  /** Script bodies, byte for byte as given. */
  scripts: Partial<Record<ScriptHook, Buffer>>;
}

export interface CreateDirective {
  mode: number | undefined;
  owner: string | undefined;
  group: string | undefined;
}

export type ScriptHook = 'firstaction' | 'prerotate' | 'postrotate' | 'lastaction';

export type Directives =
  | { kind: 'native'; policy: RotationPolicy; directives: string[] }
  | { kind: 'logrotate'; reason: string; understood: UnderstoodDirectives };

/** Options the helper cannot fully handle: what it understands of them, and what it does not. */
export interface UnderstoodDirectives {
  policy: RotationPolicy;
  directives: string[];
  /** Why each of the others is not handled natively, in order. */
  unhandled: string[];
  /** Directives through which logrotate runs commands the options name: script blocks, compresscmd, uncompresscmd. */
  commands: string[];
}

const SCRIPT_HOOKS = new Set<string>(['firstaction', 'prerotate', 'postrotate', 'lastaction']);
/** Directives that are not native and name a program for logrotate to run. */
const COMMAND_DIRECTIVES = new Set(['compresscmd', 'uncompresscmd']);
/** Accepted with no effect: a single log whose size --max_size governs, rotated by the helper's own user. */
const NO_EFFECT = new Set(['size', 'minsize', 'maxsize', 'su', 'notifempty', 'ifempty', 'sharedscripts', 'nosharedscripts']);

/** `rotate -1`: logrotate moves every old file up and removes none. */
export const KEEP_ALL = -1;

class Unhandled extends Error {}

/**
 * One count, read as logrotate 3.21 reads it: C's strtol (rotate) or strtoul (maxage) in base 0, so `010` is octal
 * and `0x10` hex, saturating on overflow, then cast to a 32-bit int. So `rotate 99999999999999999999` is -1 (keep
 * all) and `maxage 4294967296` is 0 (off). A value logrotate rejects leaves the directives to logrotate itself.
 */
function count(keyword: string, args: string[], unsigned: boolean, min: number): number {
  const value = args.length === 1 ? cInt(args[0], unsigned) : undefined;
  if (value === undefined || value < min) {
    throw new Unhandled(`'${keyword} ${args.join(' ')}' is not a count logrotate accepts`);
  }
  return value;
}

const LONG_MAX = 2n ** 63n - 1n;
const ULONG_MAX = 2n ** 64n - 1n;

function cInt(text: string, unsigned: boolean): number | undefined {
  const match = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (match === null) return undefined;
  const [, sign, digits] = match;
  const octal = digits.length > 1 && digits[0] === '0' && !/^0[xX]/.test(digits);
  const magnitude = BigInt(octal ? `0o${digits.slice(1)}` : digits);
  let value: bigint;
  if (unsigned) value = magnitude > ULONG_MAX ? ULONG_MAX : BigInt.asUintN(64, sign === '-' ? -magnitude : magnitude);
  else if (sign === '-') value = magnitude > LONG_MAX + 1n ? -LONG_MAX - 1n : -magnitude;
  else value = magnitude > LONG_MAX ? LONG_MAX : magnitude;
  return Number(BigInt.asIntN(32, value));
}

/** Reads `options` as latin1, a character per byte: the keywords are ASCII, and script bodies keep their bytes. */
export function parseDirectives(options: Buffer | undefined): Directives {
  const understood = understand(options);
  const { policy, directives, unhandled } = understood;
  if (unhandled.length > 0) return { kind: 'logrotate', reason: unhandled[0], understood };
  return { kind: 'native', policy, directives };
}

/** Every directive of `options`: the policy of those handled natively, and why each other one is not. */
function understand(options: Buffer | undefined): UnderstoodDirectives {
  const policy: RotationPolicy = {
    rotate: 0,
    compress: false,
    delaycompress: false,
    maxageDays: undefined,
    missingok: false,
    copytruncate: false,
    create: undefined,
    scripts: {},
  };
  const directives: string[] = [];
  const unhandled: string[] = [];
  const commands: string[] = [];
  const lines = (options?.toString('latin1') ?? '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const [keyword, ...args] = line.split(/\s+/);
    if (SCRIPT_HOOKS.has(keyword)) {
      commands.push(keyword);
      const end = lines.findIndex((l, j) => j > i && l.trim() === 'endscript');
      if (end < 0) {
        unhandled.push(`'${keyword}' has no endscript`);
        break;
      }
      directives.push(keyword);
      policy.scripts[keyword as ScriptHook] = Buffer.from(lines.slice(i + 1, end).join('\n'), 'latin1');
      i = end;
      continue;
    }
    if (COMMAND_DIRECTIVES.has(keyword)) commands.push(keyword);
    try {
      apply(policy, keyword, args);
      directives.push(keyword);
    } catch (err) {
      if (!(err instanceof Unhandled)) throw err;
      unhandled.push(err.message);
    }
  }
  return { policy, directives, unhandled, commands };
}

/** One directive other than a script block; throws Unhandled for one the helper does not handle natively. */
function apply(policy: RotationPolicy, keyword: string, args: string[]): void {
  switch (keyword) {
    case 'rotate':
      policy.rotate = count(keyword, args, false, KEEP_ALL);
      break;
    case 'maxage': {
      const days = count(keyword, args, true, 0);
      policy.maxageDays = days === 0 ? undefined : days;
      break;
    }
    case 'compress':
    case 'nocompress':
      policy.compress = keyword === 'compress';
      break;
    case 'delaycompress':
    case 'nodelaycompress':
      policy.delaycompress = keyword === 'delaycompress';
      break;
    case 'missingok':
    case 'nomissingok':
      policy.missingok = keyword === 'missingok';
      break;
    case 'copytruncate':
    case 'nocopytruncate':
      policy.copytruncate = keyword === 'copytruncate';
      break;
    case 'create': {
      const [mode, owner, group] = args;
      if (mode !== undefined && !/^[0-7]{3,4}$/.test(mode)) throw new Unhandled(`'create ${args.join(' ')}'`);
      policy.create = { mode: mode === undefined ? undefined : parseInt(mode, 8), owner, group };
      break;
    }
    default:
      if (!NO_EFFECT.has(keyword)) throw new Unhandled(`directive '${keyword}'`);
  }
}
