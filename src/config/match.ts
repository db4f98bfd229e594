import type { ConfigReader } from '../config-reader.js';
import { ConfigError } from '../config-reader.js';
import type { StreamMetadata } from '../mesos/metadata.js';

/** `match:` of a sink: every given key must match (globs with * and ?); absent keys match anything. */
export interface MatchSpec {
  stream?: string[];
  framework_id?: string[];
  executor_id?: string[];
  task_id?: string[];
  /** Task or executor label key -> glob on its value. */
  labels?: Record<string, string>;
}

const ID_KEYS = ['stream', 'framework_id', 'executor_id', 'task_id'] as const;

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

export function parseMatch(reader: ConfigReader): MatchSpec {
  const spec: MatchSpec = {};
  for (const key of ID_KEYS) {
    if (!reader.has(key)) continue;
    spec[key] = Array.isArray(reader.map[key]) ? reader.stringList(key) : [reader.string(key)];
  }
  if (spec.stream?.some((s) => !['stdout', 'stderr', '*'].includes(s))) {
    throw new ConfigError(reader.key('stream'), spec.stream, 'must be stdout, stderr or a list of them');
  }
  if (reader.has('labels')) spec.labels = reader.stringMap('labels');
  reader.done();
  return spec;
}

/** Compiles a spec into a predicate over stream metadata. */
export function compileMatch(spec: MatchSpec): (meta: StreamMetadata) => boolean {
  const ids = ID_KEYS.flatMap((key) => (spec[key] ? [{ key, patterns: spec[key]!.map(globToRegExp) }] : []));
  const labels = Object.entries(spec.labels ?? {}).map(([key, glob]) => ({ key, pattern: globToRegExp(glob) }));
  return (meta) =>
    ids.every(({ key, patterns }) => {
      const value = meta[key];
      return value !== undefined && patterns.some((p) => p.test(value));
    }) &&
    labels.every(({ key, pattern }) => {
      const value = meta.task_labels[key] ?? meta.executor_labels[key];
      return value !== undefined && pattern.test(value);
    });
}
