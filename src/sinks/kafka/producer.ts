import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Producer, ProducerOptions } from '@platformatic/kafka';
import { tlsConnectOptions, type TlsOptions } from '../../net/tls-options.js';
import { RejectedBatch } from '../send-outcome.js';
import type { KafkaRecord } from './record.js';

export const COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

export interface SaslOptions {
  mechanism: SaslMechanism;
  username: string;
  password?: string;
  /** Read for each authentication, so a rotated secret is picked up. */
  password_file?: string;
}

export interface ProducerSettings {
  brokers: string[];
  clientId: string;
  compression: Compression;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  tls: TlsOptions | undefined;
  sasl: SaslOptions | undefined;
}

/**
 * Broker errors about the records themselves (too large, a topic that cannot exist or that we may not write, a
 * codec the broker refuses): sending the batch again cannot succeed, so it is rejected. Every other error (network,
 * timeouts, leader changes, an unknown topic not created yet, authentication) is retried.
 */
const REJECTING = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'INVALID_TIMESTAMP',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
  'POLICY_VIOLATION',
  'UNSUPPORTED_COMPRESSION_TYPE',
]);

/** The broker forgot or refused our idempotence state (a restarted broker, an expired producer id): start anew. */
const NEEDS_NEW_PRODUCER = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH']);

interface ClientError {
  message: string;
  /** A broker error's name, e.g. MESSAGE_TOO_LARGE. */
  apiId?: string;
  /** What the broker said about it, when it said anything. */
  serverErrorMessage?: string | null;
  /** The errors an aggregate (retries, several brokers) is made of. */
  errors?: ClientError[];
  cause?: { message?: string };
}

/** Every broker error name in an error and the errors it aggregates. */
function brokerErrors(err: ClientError, ids = new Set<string>()): Set<string> {
  if (typeof err.apiId === 'string') ids.add(err.apiId);
  for (const inner of err.errors ?? []) brokerErrors(inner, ids);
  return ids;
}

/**
 * The client's summary and the last underlying error with the broker's own words, for the log and `lastError`:
 * `initProducerId failed 3 times.: Connection to 127.0.0.1:1 failed. (connect ECONNREFUSED 127.0.0.1:1)`.
 */
function describe(err: ClientError): string {
  let last = err;
  while (last.errors !== undefined && last.errors.length > 0) last = last.errors[last.errors.length - 1];
  const detail = [last.apiId, last.serverErrorMessage, last.cause?.message].filter((part) => typeof part === 'string' && part !== '');
  const leaf = last === err ? '' : `: ${last.message}`;
  return `${err.message}${leaf}${detail.length === 0 ? '' : ` (${detail.join(': ')})`}`;
}

/**
 * `host:port`, or `[v6 address]:port`, as a host and a port (undefined if it is neither). Given to the client as
 * such: it splits a string at the first colon, which breaks IPv6 addresses.
 */
export function brokerAddress(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:\s[\]]+)):(\d+)$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port < 1 || port > 65_535) return undefined;
  return { host: match[1] ?? match[2], port };
}

type KafkaModule = typeof import('@platformatic/kafka');

/** Java's partitioner (murmur2 of the key, positive), so a key lands where other clients put it. */
const javaPartition = (kafka: KafkaModule, key: Buffer): number => kafka.murmur2(key) & 0x7fffffff;

/**
 * One idempotent producer (acks=all) over @platformatic/kafka, made on the first send: the client is imported only
 * then, so a helper without a kafka sink never loads it.
 */
export class KafkaProducer {
  private producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;
  private kafka: KafkaModule | undefined;
  private roundRobin = 0;

  constructor(private readonly settings: ProducerSettings) {}

  /** Resolves once every partition leader acknowledged its records (acks=all); RejectedBatch for a refusal. */
  async send(records: KafkaRecord[]): Promise<void> {
    const producer = await this.open();
    try {
      await producer.send({ messages: records });
    } catch (caught) {
      const err = caught as ClientError;
      const ids = [...brokerErrors(err)];
      if (ids.some((id) => REJECTING.has(id))) throw new RejectedBatch(describe(err));
      if (ids.some((id) => NEEDS_NEW_PRODUCER.has(id))) this.discard();
      throw new Error(describe(err));
    }
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.close(true);
  }

  private discard(): void {
    void this.close().catch(() => undefined);
  }

  private async open(): Promise<Producer<Buffer, Buffer, Buffer, Buffer>> {
    if (this.producer !== undefined) return this.producer;
    const kafka = (this.kafka ??= await import('@platformatic/kafka'));
    const { settings } = this;
    const options: ProducerOptions<Buffer, Buffer, Buffer, Buffer> = {
      clientId: settings.clientId,
      bootstrapBrokers: settings.brokers.map((broker) => brokerAddress(broker)!),
      idempotent: true,
      acks: kafka.ProduceAcks.ALL,
      compression: settings.compression,
      // The broker decides (auto.create.topics.enable): a topic it does not create is retried until it exists.
      autocreateTopics: true,
      // The client's own retries are few and quick (a leader change); the sink's backoff takes longer failures.
      // (An idempotent producer treats 0 or 1 as "forever".)
      retries: 2,
      retryDelay: 250,
      connectTimeout: settings.connectTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      timeout: settings.requestTimeoutMs,
      partitioner: (_message, key) => (key === undefined ? this.roundRobin++ & 0x7fffffff : javaPartition(kafka, key)),
    };
    if (settings.tls !== undefined) {
      options.tls = tlsConnectOptions(settings.tls);
      // The certificate is checked against each broker's own host, unless tls.servername names another. SNI carries
      // that name too (proxies and hosted clusters route by it), except for a cluster bootstrapped by IP address,
      // where an IP as SNI is refused by the RFC and warned about by Node.
      const byName = settings.brokers.some((broker) => isIP(brokerAddress(broker)!.host) === 0);
      options.tlsServerName = settings.tls.servername ?? byName;
    }
    const { sasl } = settings;
    if (sasl !== undefined) {
      const file = sasl.password_file;
      options.sasl = {
        mechanism: kafka.SASLMechanisms[sasl.mechanism === 'plain' ? 'PLAIN' : sasl.mechanism === 'scram-sha-256' ? 'SCRAM_SHA_256' : 'SCRAM_SHA_512'],
        username: sasl.username,
        password: file === undefined ? sasl.password : () => readFileSync(file, 'utf8').trimEnd(),
      };
    }
    this.producer = new kafka.Producer(options);
    return this.producer;
  }
}
