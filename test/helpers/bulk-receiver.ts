// A faithful-enough Elasticsearch `_bulk` endpoint for the elasticsearch sink's tests, on top of HttpReceiver: it
// parses the NDJSON action/source pairs as Elasticsearch does, answers each item on its own (per-item 429s and 400s
// on cue), and keeps the documents it stored. Whole-request faults (500, 429 + Retry-After, resets, slow answers,
// 400) are queued on `http` as for every HTTP sink.
import type { Answer, ReceivedRequest } from './http-receiver.js';
import { HttpReceiver } from './http-receiver.js';
import type { KillableReceiver } from './outage.js';

export interface BulkDocument {
  action: 'create' | 'index';
  index: string;
  source: Record<string, unknown>;
}

/** A stored document and the request (index in `http.requests`) that stored it. */
export interface StoredDocument extends BulkDocument {
  request: number;
}

/** One item's answer: a status and, for a failure, Elasticsearch's error type and reason. */
export interface ItemAnswer {
  status: number;
  error?: { type: string; reason: string };
}

export const ITEM_429: ItemAnswer = {
  status: 429,
  error: {
    type: 'es_rejected_execution_exception',
    reason: 'rejected execution of coordinating operation [coordinating_and_primary_bytes=0, max_coordinating_and_primary_bytes=0]',
  },
};
export const ITEM_MAPPER_400: ItemAnswer = {
  status: 400,
  error: { type: 'mapper_parsing_exception', reason: "failed to parse field [message] of type [long] in document with id 'x'" },
};

export interface BulkReceiverOptions {
  /** `received()` reports the number after this label at the start of each stored document's `message`. */
  label?: string;
  /**
   * A document's answer, beyond what the receiver checks itself (undefined: stored). `attempt` counts the times a
   * document with this message was offered before (0 the first time).
   */
  answer?: (document: BulkDocument, attempt: number) => ItemAnswer | undefined;
  /** Names (or prefixes ending in `*`) that are data streams: they take only `create` and need `@timestamp`. */
  dataStreams?: string[];
  /** A whole-request answer for the request with this index (0 the first), instead of per-item results. */
  wholeRequest?: (request: number) => Answer | undefined;
}

const ACTIONS = new Set(['create', 'index', 'update', 'delete']);
/** Elasticsearch's index name rules (MetadataCreateIndexService.validateIndexOrAliasName). */
const INVALID_INDEX = /[A-Z\\/*?"<>| ,#:]/;

function invalidIndexReason(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return 'must not be empty, "." or ".."';
  if (INVALID_INDEX.test(name)) return 'must be lowercase and must not contain \\, /, *, ?, ", <, >, |, space, comma, # or :';
  if (/^[-_+]/.test(name)) return 'must not start with \'_\', \'-\', or \'+\'';
  if (Buffer.byteLength(name) > 255) return 'index name is too long';
  return undefined;
}

/** The pairs of a `_bulk` body; throws where Elasticsearch answers the whole request 400. */
export function bulkDocuments(body: Buffer): BulkDocument[] {
  const text = body.toString('utf8');
  if (!text.endsWith('\n')) throw new Error('The bulk request must be terminated by a newline [\\n]');
  const lines = text.split('\n').slice(0, -1);
  const documents: BulkDocument[] = [];
  for (let i = 0; i < lines.length; i += 2) {
    const action = JSON.parse(lines[i]) as Record<string, { _index?: unknown }>;
    const names = Object.keys(action);
    if (names.length !== 1 || !ACTIONS.has(names[0])) throw new Error(`Malformed action/metadata line [${i + 1}]`);
    const name = names[0] as BulkDocument['action'];
    if (name !== 'create' && name !== 'index') throw new Error(`the sink never sends ${name}`);
    const index = action[name]._index;
    if (typeof index !== 'string') throw new Error(`action line ${i + 1} has no _index`);
    if (i + 1 >= lines.length) throw new Error(`action line ${i + 1} has no source`);
    const source = JSON.parse(lines[i + 1]) as unknown;
    if (typeof source !== 'object' || source === null || Array.isArray(source)) throw new Error(`source ${i + 2} is not an object`);
    documents.push({ action: name, index, source: source as Record<string, unknown> });
  }
  return documents;
}

export class BulkReceiver implements KillableReceiver {
  readonly http: HttpReceiver;
  /** Every stored document, in the order stored (retried ones again when stored again). */
  readonly stored: StoredDocument[] = [];
  /** Every item answer other than stored: [message, answer]. */
  readonly refused: [string, ItemAnswer][] = [];
  private readonly attempts = new Map<string, number>();
  private readonly pattern: RegExp | undefined;

  constructor(private readonly options: BulkReceiverOptions = {}) {
    this.http = new HttpReceiver({ respond: (request) => this.respond(request) });
    this.pattern = options.label === undefined ? undefined : new RegExp(`^${options.label} (\\d+)(?: |$)`);
  }

  get url(): string {
    return this.http.url;
  }

  start(): Promise<void> {
    return this.http.start();
  }

  kill(): Promise<void> {
    return this.http.kill();
  }

  close(): Promise<void> {
    return this.http.close();
  }

  /** The sequence numbers of the stored documents' messages, in the order stored, duplicates included. */
  received(): number[] {
    const pattern = this.pattern;
    if (pattern === undefined) throw new Error('BulkReceiver: no label given');
    const numbers: number[] = [];
    for (const doc of this.stored) {
      const match = pattern.exec(String(doc.source.message));
      if (match !== null) numbers.push(Number(match[1]));
    }
    return numbers;
  }

  private isDataStream(index: string): boolean {
    return (this.options.dataStreams ?? []).some((name) => (name.endsWith('*') ? index.startsWith(name.slice(0, -1)) : index === name));
  }

  private itemAnswer(document: BulkDocument): ItemAnswer {
    const invalid = invalidIndexReason(document.index);
    if (invalid !== undefined) {
      return { status: 400, error: { type: 'invalid_index_name_exception', reason: `Invalid index name [${document.index}], ${invalid}` } };
    }
    if (this.isDataStream(document.index)) {
      if (document.action !== 'create') {
        return { status: 400, error: { type: 'illegal_argument_exception', reason: `only write ops with an op_type of create are allowed in data streams` } };
      }
      if (typeof document.source['@timestamp'] !== 'string') {
        return { status: 400, error: { type: 'illegal_argument_exception', reason: 'data stream timestamp field [@timestamp] is missing' } };
      }
    }
    const message = String(document.source.message);
    const attempt = this.attempts.get(message) ?? 0;
    this.attempts.set(message, attempt + 1);
    return this.options.answer?.(document, attempt) ?? { status: document.action === 'create' ? 201 : 200 };
  }

  private respond(request: ReceivedRequest): Answer {
    const scripted = this.options.wholeRequest?.(this.http.requests.indexOf(request));
    if (scripted !== undefined) return scripted;
    const url = new URL(request.path, 'http://x');
    if (!url.pathname.endsWith('/_bulk')) return { status: 404, body: JSON.stringify({ error: `no handler for ${url.pathname}` }) };
    if (!/^application\/(x-ndjson|json)/.test(request.headers['content-type'] ?? '')) {
      return { status: 406, body: JSON.stringify({ error: `Content-Type header [${request.headers['content-type']}] is not supported` }) };
    }
    let documents: BulkDocument[];
    try {
      documents = bulkDocuments(request.body);
    } catch (err) {
      return { status: 400, body: JSON.stringify({ error: { type: 'illegal_argument_exception', reason: (err as Error).message }, status: 400 }) };
    }
    const requestIndex = this.http.requests.indexOf(request);
    let errors = false;
    const items = documents.map((document, i) => {
      const answer = this.itemAnswer(document);
      const ok = answer.status >= 200 && answer.status < 300;
      if (ok) this.stored.push({ ...document, request: requestIndex });
      else {
        errors = true;
        this.refused.push([String(document.source.message), answer]);
      }
      // The shape Elasticsearch answers with; the sink asks for a filter_path, which this receiver ignores.
      const item = ok
        ? { _index: document.index, _id: `${requestIndex}-${i}`, _version: 1, result: 'created', _shards: { total: 1, successful: 1, failed: 0 }, _seq_no: i, _primary_term: 1, status: answer.status }
        : { _index: document.index, _id: null, status: answer.status, error: answer.error };
      return { [document.action]: item };
    });
    return { status: 200, body: JSON.stringify({ took: 3, errors, items }) };
  }
}
