import { ConfigError } from '../../config-reader.js';
import { compileTemplate } from '../template.js';
import type { StreamMetadata } from '../../mesos/metadata.js';

/**
 * Index and data stream names, as Elasticsearch and OpenSearch accept them: lowercase, none of `\ / * ? " < > |`,
 * space, `,`, `#` or `:`, not starting with `-`, `_` or `+` (nor `.`, kept for hidden and system indices), not `.`
 * or `..`, at most 255 bytes.
 */
const FORBIDDEN = /[\\/*?"<>| ,#:\x00-\x1f\x7f]/g;
const BAD_START = /^[-_+.]/;
const MAX_BYTES = 255;
/** Put before a rendered name that starts badly (a placeholder unknown for a stream renders as `_`). */
const PREFIX = 'mesos-';

/**
 * A name from metadata. The template's own text must already be valid (checked here, at config time); what the
 * placeholders bring is made valid when rendered: lowercased, forbidden characters as `_`, `mesos-` before a bad
 * start or an empty name, cut to 255 bytes.
 */
export interface IndexNameTemplate {
  render(meta: StreamMetadata, time: number): string;
}

export function compileIndexName(key: string, source: string): IndexNameTemplate {
  const template = compileTemplate(key, source);
  const why = literalProblem(source);
  if (why !== undefined) throw new ConfigError(key, source, why);
  return { render: (meta, time) => validIndexName(template.render(meta, time)) };
}

/** What is wrong with a template's own text (its placeholders left out), if anything. */
function literalProblem(source: string): string | undefined {
  if (source === '') return 'must not be empty';
  const literal = source.replace(/\{[^{}]*\}/g, '');
  if (literal !== literal.toLowerCase()) return 'must be lowercase (Elasticsearch index names are)';
  const forbidden = literal.match(FORBIDDEN);
  if (forbidden !== null) {
    return `must not contain ${JSON.stringify(forbidden[0])}: index names exclude \\ / * ? " < > | , # : and spaces`;
  }
  if (BAD_START.test(source)) return 'must not start with -, _, + or .';
  return undefined;
}

/** `name` made acceptable as an index or data stream name. */
export function validIndexName(name: string): string {
  let valid = name.toLowerCase().replace(FORBIDDEN, '_');
  if (valid === '' || BAD_START.test(valid)) valid = PREFIX + valid;
  if (Buffer.byteLength(valid) <= MAX_BYTES) return valid;
  const cut = Buffer.from(valid).subarray(0, MAX_BYTES).toString('utf8');
  // A character cut in half decodes as U+FFFD: drop it.
  return cut.replace(/\ufffd$/, '');
}
