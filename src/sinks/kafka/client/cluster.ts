// The brokers as the producer sees them: one connection per broker address (versions negotiated and SASL done when
// it opens), the bootstrap brokers tried in turn, and the topics' metadata, cached for a while.
import type { ConnectionOptions } from 'node:tls';
import { Connection } from './connection.js';
import { fetchMetadata, type BrokerAddress, type TopicMetadata } from './metadata.js';
import { authenticate, type SaslCredentials } from './sasl.js';
import { negotiate, versionOf, type Versions } from './versions.js';

export interface ClusterSettings {
  bootstrap: BrokerAddress[];
  clientId: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** Made for each new connection, so that renewed certificate files are read. */
  tls: (() => ConnectionOptions) | undefined;
  sasl: SaslCredentials | undefined;
  /** Called when a connection to a broker is made again after one was lost. */
  onReconnect(): void;
}

export interface BrokerLink {
  connection: Connection;
  versions: Versions;
}

/** How long a topic's partitions and leaders are trusted without a failure (Kafka's metadata.max.age.ms). */
const METADATA_MAX_AGE_MS = 5 * 60_000;

const addressOf = ({ host, port }: BrokerAddress): string => `${host}\0${port}`;

export class Cluster {
  private readonly links = new Map<string, Promise<BrokerLink>>();
  private readonly opened = new Set<string>();
  private readonly brokers = new Map<number, BrokerAddress>();
  private readonly topics = new Map<string, TopicMetadata & { at: number }>();
  private nextBootstrap = 0;

  constructor(private readonly settings: ClusterSettings) {}

  /** The connection to one broker, made (or made again) if needed. */
  link(address: BrokerAddress): Promise<BrokerLink> {
    const key = addressOf(address);
    const existing = this.links.get(key);
    if (existing !== undefined) return existing;
    const opening = this.open(address);
    this.links.set(key, opening);
    opening.then(
      ({ connection }) => connection.closed.then(() => this.links.get(key) === opening && this.links.delete(key)),
      () => this.links.get(key) === opening && this.links.delete(key),
    );
    return opening;
  }

  /** The connection of a broker by node id (from the metadata). */
  linkTo(nodeId: number): Promise<BrokerLink> {
    const address = this.brokers.get(nodeId);
    if (address === undefined) return Promise.reject(new Error(`the cluster metadata names no broker ${nodeId}`));
    return this.link(address);
  }

  /** Any broker: one already connected, else the bootstrap brokers in turn; the last failure if none answers. */
  async anyLink(): Promise<BrokerLink> {
    const open = this.links.values().next();
    if (!open.done) {
      try {
        return await open.value;
      } catch {
        // tried again through the bootstrap list below
      }
    }
    const { bootstrap } = this.settings;
    let failure: unknown;
    for (let tried = 0; tried < bootstrap.length; tried++) {
      const address = bootstrap[this.nextBootstrap];
      try {
        return await this.link(address);
      } catch (err) {
        failure = err;
        this.nextBootstrap = (this.nextBootstrap + 1) % bootstrap.length;
      }
    }
    throw failure;
  }

  /** The partitions and leaders of `names`, asked for (and auto-created where allowed) when not known or stale. */
  async topicsOf(names: string[]): Promise<Map<string, TopicMetadata>> {
    const now = Date.now();
    const missing = names.filter((name) => {
      const known = this.topics.get(name);
      return known === undefined || known.error !== 0 || now - known.at > METADATA_MAX_AGE_MS;
    });
    if (missing.length > 0) {
      const { connection, versions } = await this.anyLink();
      const metadata = await fetchMetadata(connection, versionOf(versions, 'Metadata', connection.address), missing, this.settings.requestTimeoutMs);
      for (const [id, address] of metadata.brokers) this.brokers.set(id, address);
      for (const [name, topic] of metadata.topics) this.topics.set(name, { ...topic, at: now });
    }
    return new Map(names.map((name) => [name, this.topics.get(name) ?? { error: 3, leaders: [] }]));
  }

  /** After a failure: leaders may have moved, partitions been added. */
  forgetTopics(): void {
    this.topics.clear();
  }

  close(): void {
    for (const link of this.links.values()) link.then(({ connection }) => connection.close(), () => undefined);
    this.links.clear();
  }

  private async open(address: BrokerAddress): Promise<BrokerLink> {
    const { settings } = this;
    const key = addressOf(address);
    const connection = await Connection.open({
      host: address.host,
      port: address.port,
      clientId: settings.clientId,
      connectTimeoutMs: settings.connectTimeoutMs,
      tls: settings.tls?.(),
    });
    if (this.opened.has(key)) settings.onReconnect();
    this.opened.add(key);
    try {
      const versions = await negotiate(connection, settings.requestTimeoutMs);
      if (settings.sasl !== undefined) await authenticate(connection, versions, settings.sasl, settings.requestTimeoutMs);
      return { connection, versions };
    } catch (err) {
      connection.close();
      throw err;
    }
  }
}
