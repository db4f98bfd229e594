import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { HttpReceiver, type HttpReceiverOptions, type ReceivedRequest } from './http-receiver.js';

/**
 * The OTLP/HTTP logs side of the tests: requests to an HttpReceiver decoded with protobufjs from the upstream
 * message definitions (test/fixtures/otlp-logs.proto), independently of the sink's hand encoder, or parsed as the
 * OTLP/JSON mapping and checked against the same definitions.
 */
const root = protobuf.loadSync(fileURLToPath(new URL('../fixtures/otlp-logs.proto', import.meta.url)));
const type = (name: string): protobuf.Type => root.lookupType(`opentelemetry.proto.${name}`);
const Request = type('ExportLogsServiceRequest');
const Response = type('ExportLogsServiceResponse');
const Status = type('Status');

/** One log record as the collector would store it, with its resource and scope flattened in. */
export interface OtlpRecord {
  resource: Record<string, unknown>;
  scope: string;
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  body: string;
  attributes: Record<string, unknown>;
  /** Index of its ResourceLogs in the request. */
  resourceIndex: number;
}

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface RequestObject {
  resourceLogs?: {
    resource?: { attributes?: KeyValue[] };
    scopeLogs?: {
      scope?: { name?: string };
      logRecords?: {
        timeUnixNano?: string;
        observedTimeUnixNano?: string;
        severityNumber?: number;
        severityText?: string;
        body?: AnyValue;
        attributes?: KeyValue[];
      }[];
    }[];
  }[];
}

const valueOf = (value: AnyValue | undefined): unknown => value?.stringValue ?? value?.boolValue ?? value?.intValue;
const attributesOf = (list: KeyValue[] | undefined): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    if (key in out) throw new Error(`OTLP: attribute ${key} twice`);
    out[key] = valueOf(value);
  }
  return out;
};

function flatten(request: RequestObject): OtlpRecord[] {
  return (request.resourceLogs ?? []).flatMap((resourceLogs, resourceIndex) => {
    const resource = attributesOf(resourceLogs.resource?.attributes);
    return (resourceLogs.scopeLogs ?? []).flatMap((scopeLogs) =>
      (scopeLogs.logRecords ?? []).map((record) => {
        if (record.body?.stringValue === undefined) throw new Error('OTLP: a record without a string body');
        return {
          resource,
          scope: scopeLogs.scope?.name ?? '',
          timeUnixNano: BigInt(record.timeUnixNano ?? 0),
          observedTimeUnixNano: BigInt(record.observedTimeUnixNano ?? 0),
          severityNumber: record.severityNumber ?? 0,
          severityText: record.severityText ?? '',
          body: record.body.stringValue,
          attributes: attributesOf(record.attributes),
          resourceIndex,
        };
      }),
    );
  });
}

/**
 * An application/x-protobuf ExportLogsServiceRequest. Re-encoding it must give as many bytes: a field under a number
 * the definitions do not have (which protobufjs would skip) or a non-minimal length fails.
 */
export function decodeProtobuf(body: Buffer): OtlpRecord[] {
  const message = Request.decode(body);
  const again = Request.encode(message).finish().length;
  if (again !== body.length) throw new Error(`OTLP protobuf: ${body.length} bytes re-encode as ${again}: fields unknown or malformed`);
  return flatten(Request.toObject(message, { longs: String, enums: Number }) as RequestObject);
}

/**
 * Every key of `value` is a lowerCamelCase field of `messageType`, 64-bit integers are decimal strings and enums
 * numbers, as the OTLP/JSON mapping requires; recursively.
 */
function checkJson(value: unknown, messageType: protobuf.Type, path: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`OTLP JSON: ${path} is not an object`);
  for (const [key, item] of Object.entries(value)) {
    const field = messageType.fields[key];
    if (field === undefined || field.name !== key) throw new Error(`OTLP JSON: ${path}.${key} is not a field of ${messageType.name}`);
    const items = field.repeated ? (Array.isArray(item) ? item : [Symbol('not an array')]) : [item];
    for (const [n, one] of items.entries()) {
      const at = field.repeated ? `${path}.${key}[${n}]` : `${path}.${key}`;
      field.resolve();
      if (field.resolvedType instanceof protobuf.Type) checkJson(one, field.resolvedType, at);
      else if (field.resolvedType instanceof protobuf.Enum) {
        if (!Number.isInteger(one)) throw new Error(`OTLP JSON: ${at} is an enum, must be a number, not ${JSON.stringify(one)}`);
      } else if (/^(u?int64|s?fixed64|sint64)$/.test(field.type)) {
        if (typeof one !== 'string' || !/^\d+$/.test(one)) throw new Error(`OTLP JSON: ${at} is 64-bit: a decimal string, not ${JSON.stringify(one)}`);
      } else if (field.type === 'string' && typeof one !== 'string') throw new Error(`OTLP JSON: ${at} must be a string`);
      else if (field.type === 'bool' && typeof one !== 'boolean') throw new Error(`OTLP JSON: ${at} must be true or false`);
    }
  }
}

/** An application/json ExportLogsServiceRequest in the OTLP/JSON mapping. */
export function decodeJson(body: Buffer): OtlpRecord[] {
  const value: unknown = JSON.parse(body.toString('utf8'));
  checkJson(value, Request, 'request');
  return flatten(value as RequestObject);
}

/** The records of one request, by its Content-Type. */
export function otlpRecords(request: ReceivedRequest): OtlpRecord[] {
  if (request.path !== '/v1/logs') throw new Error(`OTLP: POST to ${request.path}, not /v1/logs`);
  const contentType = request.headers['content-type'];
  if (contentType === 'application/x-protobuf') return decodeProtobuf(request.body);
  if (contentType === 'application/json') return decodeJson(request.body);
  throw new Error(`OTLP: unexpected Content-Type ${contentType}`);
}

/** A google.rpc.Status body, as a collector sends with an error status. */
export const statusBody = (code: number, message: string): Uint8Array => Status.encode(Status.create({ code, message })).finish();

/** An ExportLogsServiceResponse reporting a partial success. */
export const partialSuccessBody = (rejected: number, message: string): Uint8Array =>
  Response.encode(Response.create({ partialSuccess: { rejectedLogRecords: rejected, errorMessage: message } })).finish();

/** An HttpReceiver that decodes OTLP logs: `lines()` are the record bodies, `received()` their numbers. */
export function otlpReceiver(options: Omit<HttpReceiverOptions, 'linesOf'> = {}): HttpReceiver {
  return new HttpReceiver({
    respond: () => ({ status: 200, body: Response.encode(Response.create({})).finish(), headers: { 'content-type': 'application/x-protobuf' } }),
    ...options,
    linesOf: (request) => otlpRecords(request).map((record) => record.body),
  });
}
