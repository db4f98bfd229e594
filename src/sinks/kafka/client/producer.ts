// An idempotent producer (acks=all): InitProducerId gives a producer id and epoch, each partition's batches carry
// sequence numbers, and Produce sends one RecordBatch per partition to each partition's leader.
import { RejectedBatch } from '../../send-outcome.js';
import { Cluster, type ClusterSettings } from './cluster.js';
import { BrokerError } from './errors.js';
import type { BrokerAddress } from './metadata.js';
import { keyPartition } from './partitioner.js';
import { encodeRecordBatch, type BatchRecord, type Codec } from './record-batch.js';
import { API, versionOf } from './versions.js';

export interface ProducerRecord extends BatchRecord {
  topic: string;
}

export interface ProducerSettings extends Omit<ClusterSettings, 'bootstrap'> {
  brokers: BrokerAddress[];
  compression: Codec;
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
  'CORRUPT_MESSAGE',
]);

/** The broker forgot or refused our idempotence state (a restarted broker, an expired producer id): start anew. */
const NEEDS_NEW_PRODUCER = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED']);

/** A batch already appended that the broker recognised by its sequences (brokers before 1.0 say so): delivered. */
const DUPLICATE_SEQUENCE_NUMBER = 46;
const LEADER_NOT_AVAILABLE = 5;
const ACKS_ALL = -1;
const MAX_SEQUENCE = 2 ** 31;

interface Identity {
  producerId: bigint;
  producerEpoch: number;
}

/** One partition's part of a send. */
interface PartitionBatch {
  topic: string;
  partition: number;
  /** The partition leader's node id. */
  leader: number;
  records: ProducerRecord[];
}

export class KafkaProducer {
  private cluster: Cluster | undefined;
  private identity: Identity | undefined;
  /** Next sequence per `topic\0partition`. */
  private readonly sequences = new Map<string, number>();
  private roundRobin = 0;

  constructor(private readonly settings: ProducerSettings) {}

  /**
   * Resolves once every partition leader acknowledged its records (acks=all); RejectedBatch for a refusal of the
   * records, any other error to be retried with the same records.
   */
  async send(records: ProducerRecord[]): Promise<void> {
    const cluster = (this.cluster ??= new Cluster({ ...this.settings, bootstrap: this.settings.brokers }));
    try {
      const identity = (this.identity ??= await this.initProducerId(cluster));
      const batches = await this.partition(cluster, records);
      const byLeader = new Map<number, PartitionBatch[]>();
      for (const batch of batches) byLeader.set(batch.leader, [...(byLeader.get(batch.leader) ?? []), batch]);
      const results = await Promise.allSettled([...byLeader].map(([leader, parts]) => this.produce(cluster, leader, parts, identity)));
      const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as Error] : []));
      const rejecting = failures.find((err) => err instanceof BrokerError && REJECTING.has(err.errorName));
      // Acknowledged partitions move on only when the batch will not be sent again: a batch retried whole carries
      // the same sequences there, and the broker acknowledges it without appending it twice.
      if (failures.length === 0 || rejecting !== undefined) {
        for (const batch of batches) {
          const key = `${batch.topic}\0${batch.partition}`;
          if (results.some((result) => result.status === 'fulfilled' && result.value.includes(batch))) {
            this.sequences.set(key, ((this.sequences.get(key) ?? 0) + batch.records.length) % MAX_SEQUENCE);
          }
        }
      }
      if (rejecting !== undefined) throw new RejectedBatch(rejecting.message);
      if (failures.some((err) => err instanceof BrokerError && NEEDS_NEW_PRODUCER.has(err.errorName))) this.forgetIdentity();
      if (failures.length > 0) throw failures[0];
    } catch (err) {
      if (err instanceof RejectedBatch) throw err;
      cluster.forgetTopics();
      if (err instanceof BrokerError && REJECTING.has(err.errorName)) throw new RejectedBatch(err.message);
      if (err instanceof BrokerError && NEEDS_NEW_PRODUCER.has(err.errorName)) this.forgetIdentity();
      throw err;
    }
  }

  private forgetIdentity(): void {
    this.identity = undefined;
    this.sequences.clear();
  }

  /** Closes every connection: a send still waiting fails. */
  async close(): Promise<void> {
    this.cluster?.close();
    this.cluster = undefined;
  }

  private async initProducerId(cluster: Cluster): Promise<Identity> {
    const { connection, versions } = await cluster.anyLink();
    const version = versionOf(versions, 'InitProducerId', connection.address);
    // Not transactional: no transactional id, and the transaction timeout is not used.
    const r = await connection.request(API.InitProducerId, version, (w) => w.string(null).int32(60_000), this.settings.requestTimeoutMs);
    r.int32(); // throttle_time_ms
    const code = r.int16();
    if (code !== 0) throw new BrokerError(code, `InitProducerId from ${connection.address}`);
    this.sequences.clear();
    return { producerId: r.int64(), producerEpoch: r.int16() };
  }

  /** The records grouped by topic and partition, in order: the key's partition, or round robin without a key. */
  private async partition(cluster: Cluster, records: ProducerRecord[]): Promise<PartitionBatch[]> {
    const topics = await cluster.topicsOf([...new Set(records.map((record) => record.topic))]);
    const batches = new Map<string, PartitionBatch>();
    for (const record of records) {
      const topic = topics.get(record.topic)!;
      if (topic.error !== 0) throw new BrokerError(topic.error, `topic ${record.topic}`);
      const count = topic.leaders.length;
      if (count === 0) throw new BrokerError(LEADER_NOT_AVAILABLE, `topic ${record.topic} (no partitions yet)`);
      const partition = record.key === undefined ? this.roundRobin++ % count : keyPartition(record.key, count);
      this.roundRobin %= MAX_SEQUENCE;
      const leader = topic.leaders[partition];
      if (leader < 0) throw new BrokerError(LEADER_NOT_AVAILABLE, `partition ${record.topic}-${partition}`);
      const id = `${record.topic}\0${partition}`;
      let batch = batches.get(id);
      if (batch === undefined) batches.set(id, (batch = { topic: record.topic, partition, leader, records: [] }));
      batch.records.push(record);
    }
    return [...batches.values()];
  }

  /** One Produce request to a leader; resolves with its batches once all are acknowledged. */
  private async produce(cluster: Cluster, leader: number, batches: PartitionBatch[], identity: Identity): Promise<PartitionBatch[]> {
    const encoded = await Promise.all(
      batches.map((batch) =>
        encodeRecordBatch(batch.records, { ...identity, baseSequence: this.sequences.get(`${batch.topic}\0${batch.partition}`) ?? 0 }, this.settings.compression),
      ),
    );
    const byTopic = new Map<string, number[]>();
    batches.forEach((batch, i) => byTopic.set(batch.topic, [...(byTopic.get(batch.topic) ?? []), i]));
    const { connection, versions } = await cluster.linkTo(leader);
    const version = versionOf(versions, 'Produce', connection.address);
    const timeoutMs = this.settings.requestTimeoutMs;
    const r = await connection.request(
      API.Produce,
      version,
      (w) =>
        w
          .string(null) // transactional_id
          .int16(ACKS_ALL)
          .int32(timeoutMs)
          .array([...byTopic], ([topic, indexes]) => w.string(topic).array(indexes, (i) => w.int32(batches[i].partition).bytes(encoded[i]))),
      timeoutMs,
    );
    let failure: BrokerError | undefined;
    r.array(() => {
      const topic = r.string();
      r.array(() => {
        const partition = r.int32();
        const code = r.int16();
        r.int64(); // base_offset
        r.int64(); // log_append_time_ms
        if (version >= 5) r.int64(); // log_start_offset
        let message: string | null = null;
        if (version >= 8) {
          const recordErrors = r.array(() => [r.int32(), r.string()] as const);
          message = r.string() ?? recordErrors.map(([index, text]) => `record ${index}: ${text}`).join('; ');
        }
        if (code === 0 || code === DUPLICATE_SEQUENCE_NUMBER) return;
        const error = new BrokerError(code, `produce to ${topic}-${partition} at ${connection.address}`, message);
        // A refusal of the records outranks a retriable error of another partition.
        if (failure === undefined || REJECTING.has(error.errorName)) failure = error;
      });
    });
    if (failure !== undefined) throw failure;
    return batches;
  }
}
