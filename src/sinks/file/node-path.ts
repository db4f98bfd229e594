import { crypto } from '../../lazy-builtins.js';
import { posix } from 'node:path';
import { ConfigError } from '../../config-reader.js';
import { compileTemplate, type Template } from '../template.js';
import type { StreamMetadata } from '../../mesos/metadata.js';

/** The longest a placeholder's value becomes: the default path's file name, 4 of them, stays within NAME_MAX (255). */
const MAX_VALUE = 60;
const NAME_MAX = 255;
const PLACEHOLDERS = /\{[^{}]*\}/g;
/** Placeholders a path must have so that each file has one writer (each stream is served by a process of its own). */
const REQUIRED = ['{container_id}', '{stream}'];

/**
 * A placeholder's value as part of a file name. Ids come from the sandbox path and the agent, so they may hold
 * anything: characters outside `[A-Za-z0-9._-]` become `_`, a value of only dots (`.`, `..`) or none at all becomes
 * underscores, and a value longer than 60 characters keeps its first 51 and ends with `-` and 8 hex digits of its
 * SHA-256 (ids that share a long prefix stay apart).
 */
export function fileNameValue(value: string): string {
  let name = value.replace(/[^A-Za-z0-9._-]/g, '_');
  if (/^\.*$/.test(name)) name = '_'.repeat(Math.max(1, name.length));
  if (name.length <= MAX_VALUE) return name;
  const digest = crypto().createHash('sha256').update(value).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX_VALUE - 9)}-${digest}`;
}

/**
 * Where the file sink writes a line: `path` rendered from the line's metadata (and time, with `{date}`), below
 * `base`, the deepest directory of `path` without a placeholder. Checked when the config is read: an absolute,
 * normalized path (no `.` or `..` component), placeholders only below `base`, every file name within NAME_MAX
 * whatever the values, `{container_id}` and `{stream}` present.
 */
export class NodePath {
  readonly base: string;
  private readonly template: Template;
  /** Rendered paths by metadata object, when they do not depend on the time. */
  private readonly byMeta = new WeakMap<StreamMetadata, string>();

  constructor(key: string, source: string) {
    const refuse = (why: string): never => {
      throw new ConfigError(key, source, why);
    };
    if (!posix.isAbsolute(source) || posix.normalize(source) !== source || source.endsWith('/')) {
      refuse('must be an absolute path without ., .. or empty components, not ending in /');
    }
    const missing = REQUIRED.filter((placeholder) => !source.includes(placeholder));
    if (missing.length > 0) refuse(`must contain ${missing.join(' and ')}: a file must have one writer`);
    const components = source.split('/');
    const firstVariable = components.findIndex((component) => component.includes('{'));
    this.base = components.slice(0, firstVariable).join('/') || '/';
    for (const component of components.slice(firstVariable)) {
      const placeholders = component.match(PLACEHOLDERS)?.length ?? 0;
      const longest = component.replace(PLACEHOLDERS, '').length + MAX_VALUE * placeholders;
      if (longest > NAME_MAX) {
        refuse(`has a file name that may reach ${longest} characters (at most ${NAME_MAX}; a placeholder counts ${MAX_VALUE})`);
      }
    }
    this.template = compileTemplate(key, source, fileNameValue);
  }

  /** Where line with `meta` and `time` goes. */
  render(meta: StreamMetadata, time: number): string {
    if (this.template.usesTime) return this.checked(this.template.render(meta, time));
    let path = this.byMeta.get(meta);
    if (path === undefined) {
      path = this.checked(this.template.render(meta, time));
      this.byMeta.set(meta, path);
    }
    return path;
  }

  /** The directories between base and the file, top first. */
  directoriesOf(path: string): string[] {
    const dirs: string[] = [];
    for (let dir = posix.dirname(path); dir !== this.base; dir = posix.dirname(dir)) dirs.unshift(dir);
    return dirs;
  }

  /** fileNameValue makes this impossible; checked anyway, as the one guarantee that nothing lands outside base. */
  private checked(path: string): string {
    const below = posix.relative(this.base, path);
    if (posix.normalize(path) !== path || below === '' || below === '..' || below.startsWith('../') || posix.isAbsolute(below)) {
      throw new Error(`refused node file path ${JSON.stringify(path)}: not below ${this.base}`);
    }
    return path;
  }
}
