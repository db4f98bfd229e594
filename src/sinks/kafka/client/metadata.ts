// Metadata v1-v8: the brokers' addresses and each topic's partitions with their leaders.
import type { Connection } from './connection.js';
import { API } from './versions.js';

export interface BrokerAddress {
  host: string;
  port: number;
}

export interface TopicMetadata {
  /** The topic's error code (0: none; UNKNOWN_TOPIC_OR_PARTITION while it does not exist). */
  error: number;
  /** Each partition's leader node id, -1 while it has none, by partition index. */
  leaders: number[];
}

export interface ClusterMetadata {
  brokers: Map<number, BrokerAddress>;
  topics: Map<string, TopicMetadata>;
}

/**
 * Asks for `topics`, and for them to be created if the cluster does that (allow_auto_topic_creation from v4; before
 * v4 the broker's auto.create.topics.enable alone decides).
 */
export async function fetchMetadata(connection: Connection, version: number, topics: string[], timeoutMs: number): Promise<ClusterMetadata> {
  const r = await connection.request(
    API.Metadata,
    version,
    (w) => {
      w.array(topics, (topic) => w.string(topic));
      if (version >= 4) w.int8(1);
      if (version >= 8) w.int8(0).int8(0);
    },
    timeoutMs,
  );
  if (version >= 3) r.int32(); // throttle_time_ms
  const brokers = new Map<number, BrokerAddress>();
  r.array(() => {
    const id = r.int32();
    const host = r.string() ?? '';
    const port = r.int32();
    r.string(); // rack
    brokers.set(id, { host, port });
  });
  if (version >= 2) r.string(); // cluster_id
  r.int32(); // controller_id
  const result = new Map<string, TopicMetadata>();
  r.array(() => {
    const error = r.int16();
    const name = r.string() ?? '';
    r.boolean(); // is_internal
    const leaders: number[] = [];
    r.array(() => {
      r.int16(); // the partition's error: a missing leader says enough
      const index = r.int32();
      leaders[index] = r.int32();
      if (version >= 7) r.int32(); // leader_epoch
      r.array(r.int32); // replica_nodes
      r.array(r.int32); // isr_nodes
      if (version >= 5) r.array(r.int32); // offline_replicas
    });
    if (version >= 8) r.int32(); // topic_authorized_operations
    result.set(name, { error, leaders: Array.from(leaders, (leader) => leader ?? -1) });
  });
  return { brokers, topics: result };
}
