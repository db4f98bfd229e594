/**
 * Reads the logrotate directives an operator passes through --logrotate_options and decides whether the helper can
 * rotate natively (same file names and effects as logrotate) or must run the real logrotate, as the original does.
 */
export interface RotationPolicy {
  /** Old files kept; logrotate keeps none when `rotate` is absent. */
  rotate: number;
  compress: boolean;
  delaycompress: boolean;
  maxageDays: number | undefined;
  missingok: boolean;
  copytruncate: boolean;
  create: CreateDirective | undefined;
  scripts: Partial<Record<ScriptHook, string>>;
}

export interface CreateDirective {
  mode: number | undefined;
  owner: string | undefined;
  group: string | undefined;
}

export type ScriptHook = 'firstaction' | 'prerotate' | 'postrotate' | 'lastaction';

export type Directives =
  | { kind: 'native'; policy: RotationPolicy; directives: string[] }
  | { kind: 'logrotate'; reason: string };

const SCRIPT_HOOKS = new Set<string>(['firstaction', 'prerotate', 'postrotate', 'lastaction']);
/** Accepted with no effect: a single log whose size --max_size governs, rotated by the helper's own user. */
const NO_EFFECT = new Set(['size', 'minsize', 'maxsize', 'su', 'notifempty', 'ifempty', 'sharedscripts', 'nosharedscripts']);

class Unhandled extends Error {}

function count(keyword: string, args: string[]): number {
  if (args.length !== 1 || !/^\d+$/.test(args[0])) throw new Unhandled(`'${keyword} ${args.join(' ')}' needs one count`);
  return Number(args[0]);
}

export function parseDirectives(options: string | undefined): Directives {
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
  const seen: string[] = [];
  const lines = (options ?? '').split('\n');
  try {
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (line === '' || line.startsWith('#')) continue;
      const [keyword, ...args] = line.split(/\s+/);
      seen.push(keyword);
      if (SCRIPT_HOOKS.has(keyword)) {
        const end = lines.findIndex((l, j) => j > i && l.trim() === 'endscript');
        if (end < 0) throw new Unhandled(`'${keyword}' has no endscript`);
        policy.scripts[keyword as ScriptHook] = lines.slice(i + 1, end).join('\n');
        i = end;
        continue;
      }
      switch (keyword) {
        case 'rotate':
          policy.rotate = count(keyword, args);
          break;
        case 'maxage':
          policy.maxageDays = count(keyword, args);
          break;
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
  } catch (err) {
    if (err instanceof Unhandled) return { kind: 'logrotate', reason: err.message };
    throw err;
  }
  return { kind: 'native', policy, directives: seen };
}
