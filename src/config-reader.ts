import { parseBytes } from './mesos/bytes.js';
import { redactValue } from './secrets.js';

/** A config value as the operator wrote it, near enough: JSON, but YAML's .inf and .nan (JSON has no such numbers). */
export function showValue(value: unknown): string {
  if (typeof value !== 'number' || Number.isFinite(value)) return JSON.stringify(value);
  if (Number.isNaN(value)) return '.nan';
  return value > 0 ? '.inf' : '-.inf';
}

/** A configuration mistake: names the key path, the value and why. */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly value: unknown,
    readonly why: string,
  ) {
    const name = key === '' ? 'the config' : key;
    super(value === undefined ? `${name} ${why}` : `${name}: ${showValue(redactValue(key, value))} ${why}`);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Typed, path-aware access to one map of the YAML config. Every getter validates and names `path.key` on error;
 * `done()` rejects keys nobody asked for, so a typo is an error rather than a silently ignored option.
 */
export class ConfigReader {
  private readonly used = new Set<string>();
  readonly map: Record<string, unknown>;

  constructor(
    readonly path: string,
    value: unknown,
  ) {
    if (value === undefined || value === null) value = {};
    if (!isObject(value)) throw new ConfigError(path, value, 'must be a map');
    this.map = value;
  }

  key(name: string): string {
    return this.path === '' ? name : `${this.path}.${name}`;
  }

  has(name: string): boolean {
    return this.map[name] !== undefined && this.map[name] !== null;
  }

  private get(name: string): unknown {
    this.used.add(name);
    return this.map[name];
  }

  child(name: string): ConfigReader {
    return new ConfigReader(this.key(name), this.get(name));
  }

  optionalString(name: string): string | undefined {
    const value = this.get(name);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' && typeof value !== 'number') throw new ConfigError(this.key(name), value, 'must be a string');
    return String(value);
  }

  string(name: string, fallback?: string): string {
    const value = this.optionalString(name) ?? fallback;
    if (value === undefined) throw new ConfigError(this.key(name), undefined, 'is required');
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.get(name);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') throw new ConfigError(this.key(name), value, 'must be true or false');
    return value;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.get(name);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(this.key(name), value, `must be a whole number from ${min} to ${max}`);
    }
    return value;
  }

  /** A size: a number of bytes or Mesos syntax such as `8MB`. */
  bytes(name: string, fallback: number, min: number): number {
    const value = this.get(name);
    if (value === undefined || value === null) return fallback;
    let bytes: number;
    try {
      // A quoted "2048" is bytes, like the bare number.
      bytes = typeof value === 'number' || /^\d+$/.test(String(value)) ? Number(value) : parseBytes(String(value));
    } catch (err) {
      throw new ConfigError(this.key(name), value, `is not a size (${(err as Error).message}); use bytes or e.g. 8MB`);
    }
    if (!Number.isSafeInteger(bytes)) throw new ConfigError(this.key(name), value, 'must be a whole number of bytes');
    if (bytes < min) throw new ConfigError(this.key(name), value, `must be at least ${min} bytes`);
    return bytes;
  }

  oneOf<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const value = this.get(name) ?? fallback;
    if (!choices.includes(value as T)) throw new ConfigError(this.key(name), value, `must be one of ${choices.join(', ')}`);
    return value as T;
  }

  stringList(name: string): string[] | undefined {
    const value = this.get(name);
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value) || value.length === 0 || value.some((v) => typeof v !== 'string' && typeof v !== 'number')) {
      throw new ConfigError(this.key(name), value, 'must be a non-empty list of strings');
    }
    return value.map(String);
  }

  stringMap(name: string): Record<string, string> {
    const value = this.get(name);
    if (value === undefined || value === null) return {};
    if (!isObject(value) || Object.values(value).some((v) => typeof v !== 'string' && typeof v !== 'number')) {
      throw new ConfigError(this.key(name), value, 'must be a map of strings');
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
  }

  /** Throws on keys that no getter read. */
  done(): void {
    for (const name of Object.keys(this.map)) {
      if (!this.used.has(name)) throw new ConfigError(this.key(name), this.map[name], 'is not a known key');
    }
  }
}
