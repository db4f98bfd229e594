import { ConfigError, type ConfigReader } from '../../config-reader.js';
import type { LineBatch } from '../../lines/line-batch.js';
import { compileTemplate, type Template } from '../template.js';
import { authorizationHeader, parseAuth, type HttpAuth } from '../../net/http-auth.js';
import { parseHttpEndpoint, type HttpEndpointOptions } from '../../net/http-options.js';
import { parseBatch, type BatchOptions } from '../batch-options.js';
import type { SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import { HEC_EVENT_PATH, HecEvents } from './hec-events.js';
import { JsonRecords } from './json-records.js';
import { PostSink } from './post-sink.js';

const FORMATS = ['ndjson', 'json_array', 'splunk_hec'] as const;
type Format = (typeof FORMATS)[number];

const CONTENT_TYPE: Record<Format, string> = {
  ndjson: 'application/x-ndjson',
  json_array: 'application/json',
  splunk_hec: 'application/json',
};

/** The `hec:` map of `format: splunk_hec`. Templates as in src/sinks/template.ts, without a date. */
interface HecOptions {
  token: string;
  source?: string;
  sourcetype?: string;
  index?: string;
}

/** The normalized `http` sink options, as check-config prints them. */
export type HttpSinkOptions = HttpEndpointOptions & {
  format: Format;
  batch: BatchOptions;
} & ({ auth?: HttpAuth; hec?: undefined } | { auth?: undefined; hec: HecOptions });

const BATCH_DEFAULTS: BatchOptions = { max_lines: 1000, max_bytes: 1 << 20, max_delay_ms: 1000 };

function hecTemplate(reader: ConfigReader, name: string): string | undefined {
  const source = reader.optionalString(name);
  if (source === undefined) return undefined;
  if (compileTemplate(reader.key(name), source).usesTime) {
    throw new ConfigError(reader.key(name), source, 'cannot use {date}: HEC metadata names where a line goes, not when it was written');
  }
  return source;
}

function parseHec(reader: ConfigReader, url: URL): HecOptions {
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(reader.key('url'), undefined, 'cannot carry a user and password with format splunk_hec: HEC authenticates with hec.token');
  }
  if (reader.has('auth')) throw new ConfigError(reader.key('auth'), undefined, 'does not apply to format splunk_hec: HEC authenticates with hec.token');
  const hec = reader.child('hec');
  const options: HecOptions = { token: hec.string('token') };
  for (const name of ['source', 'sourcetype', 'index'] as const) {
    const template = hecTemplate(hec, name);
    if (template !== undefined) options[name] = template;
  }
  hec.done();
  return options;
}

function parse(reader: ConfigReader): HttpSinkOptions {
  const endpoint = parseHttpEndpoint(reader, { compression: 'gzip' });
  const format = reader.oneOf('format', FORMATS, 'ndjson');
  const url = new URL(endpoint.url);
  if (Object.keys(endpoint.headers).some((name) => name.toLowerCase() === 'authorization') && format === 'splunk_hec') {
    throw new ConfigError(reader.key('headers'), undefined, 'cannot set Authorization with format splunk_hec: HEC authenticates with hec.token');
  }
  const batch = parseBatch(reader.child('batch'), BATCH_DEFAULTS);
  if (format === 'splunk_hec') return { ...endpoint, format, hec: parseHec(reader, url), batch };
  if (reader.has('hec')) throw new ConfigError(reader.key('hec'), undefined, 'applies only to format splunk_hec');
  const auth = parseAuth(reader, url, endpoint.headers);
  return { ...endpoint, format, ...(auth === undefined ? {} : { auth }), batch };
}

/** Splunk's own scheme for HEC tokens. */
const hecAuthorization = (token: string): string => `Splunk ${token}`;

/** POSTs batches of lines as NDJSON, a JSON array, or Splunk HEC events. */
class HttpSink extends PostSink {
  private readonly encodeBody: (batch: LineBatch) => Buffer;

  constructor(options: HttpSinkOptions, context: SinkContext) {
    const hec = options.hec;
    const headers: Record<string, string> = { 'content-type': CONTENT_TYPE[options.format] };
    if (hec !== undefined) headers.authorization = hecAuthorization(hec.token);
    else if (options.auth !== undefined) headers.authorization = authorizationHeader(options.auth);
    // The url's path when it names one; else HEC's event endpoint.
    const path = hec !== undefined && new URL(options.url).pathname === '/' ? HEC_EVENT_PATH : undefined;
    super({ endpoint: options, batch: options.batch, headers, path }, context);
    if (hec !== undefined) {
      const template = (name: 'source' | 'sourcetype' | 'index'): Template | undefined => {
        const source = hec[name];
        return source === undefined ? undefined : compileTemplate(`hec.${name}`, source);
      };
      const events = new HecEvents({ source: template('source'), sourcetype: template('sourcetype'), index: template('index') });
      this.encodeBody = (batch) => events.encode(batch);
    } else {
      const records = new JsonRecords();
      this.encodeBody = options.format === 'ndjson' ? (batch) => records.ndjson(batch) : (batch) => records.jsonArray(batch);
    }
  }

  protected encode(batch: LineBatch): Buffer {
    return this.encodeBody(batch);
  }
}

export const httpSink: SinkType<HttpSinkOptions> = {
  type: 'http',
  parse,
  create: (options, context) => new HttpSink(options, context),
};
