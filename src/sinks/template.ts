import { ConfigError } from '../config-reader.js';
import type { StreamMetadata } from '../mesos/metadata.js';
import { ID_FIELDS } from '../mesos/record-fields.js';

/**
 * A name made from a line's metadata and time: `{task_id}`, `{framework_id}`, `{stream}`, ... (any string field of
 * StreamMetadata), `{task_label.KEY}` / `{executor_label.KEY}`, and `{date}` (the line's UTC date, YYYY.MM.DD, as
 * Logstash names indices) or `{date:FORMAT}` with %Y %m %d %H. A field that is unknown for a stream becomes `_`.
 * Used for Kafka topics, Elasticsearch indices, Fluent tags and node file paths; each sink then checks the result
 * against its own rules.
 */
export interface Template {
  readonly source: string;
  /** Whether the result depends on the line's time (else it is the same for all lines of a metadata). */
  readonly usesTime: boolean;
  render(meta: StreamMetadata, time: number): string;
}

const FIELDS = ['stream', ...ID_FIELDS] as const;
type Field = (typeof FIELDS)[number];

const UNKNOWN = '_';
const pad = (n: number): string => String(n).padStart(2, '0');

function formatDate(format: string, time: number): string {
  const date = new Date(time);
  return format.replace(/%[YmdH%]/g, (spec) => {
    switch (spec) {
      case '%Y':
        return String(date.getUTCFullYear());
      case '%m':
        return pad(date.getUTCMonth() + 1);
      case '%d':
        return pad(date.getUTCDate());
      case '%H':
        return pad(date.getUTCHours());
      default:
        return '%';
    }
  });
}

type Part = string | ((meta: StreamMetadata, time: number) => string);

/**
 * Compiles `source`; an unknown placeholder is a ConfigError naming `key`. `escape`, when given, is applied to each
 * placeholder's value (not to the literal text), e.g. to make it a safe file name.
 */
export function compileTemplate(key: string, source: string, escape?: (value: string) => string): Template {
  const parts: Part[] = [];
  let usesTime = false;
  let at = 0;
  for (const match of source.matchAll(/\{([^{}]*)\}/g)) {
    parts.push(source.slice(at, match.index));
    at = match.index + match[0].length;
    const name = match[1];
    if (name === 'date' || name.startsWith('date:')) {
      const format = name === 'date' ? '%Y.%m.%d' : name.slice(5);
      usesTime = true;
      parts.push((_meta, time) => formatDate(format, time));
    } else if (name.startsWith('task_label.') || name.startsWith('executor_label.')) {
      const [kind, label] = [name.slice(0, name.indexOf('.')), name.slice(name.indexOf('.') + 1)];
      const labels = kind === 'task_label' ? 'task_labels' : 'executor_labels';
      parts.push((meta) => meta[labels][label] ?? UNKNOWN);
    } else if ((FIELDS as readonly string[]).includes(name)) {
      const field = name as Field;
      parts.push((meta) => meta[field] ?? UNKNOWN);
    } else {
      const known = [...FIELDS, 'task_label.KEY', 'executor_label.KEY', 'date', 'date:FORMAT'].join(', ');
      throw new ConfigError(key, source, `has an unknown placeholder {${name}}; known: ${known}`);
    }
  }
  parts.push(source.slice(at));
  const escaped =
    escape === undefined
      ? parts
      : parts.map((part): Part => (typeof part === 'string' ? part : (meta, time) => escape(part(meta, time))));
  const fixed = escaped.filter((part) => part !== '');
  return {
    source,
    usesTime,
    render: (meta, time) => {
      let out = '';
      for (const part of fixed) out += typeof part === 'string' ? part : part(meta, time);
      return out;
    },
  };
}
