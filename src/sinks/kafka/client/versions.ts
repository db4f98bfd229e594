// Which version of each API to use with a broker: ApiVersions v0 (every broker since Kafka 0.10 answers it, and
// newer ones answer v0 too) lists the broker's ranges, and the highest version both sides speak is chosen.
import type { Connection } from './connection.js';
import { BrokerError } from './errors.js';

export const API = { Produce: 0, Metadata: 3, SaslHandshake: 17, ApiVersions: 18, InitProducerId: 22, SaslAuthenticate: 36 } as const;
type ApiName = keyof typeof API;

/**
 * The versions this client implements: the non-flexible ones (no tagged fields), which brokers from Kafka 0.11
 * (RecordBatch v2, idempotence) to 4.x all accept. Produce v3 and InitProducerId v0 are Kafka 0.11's; Produce v8
 * (Kafka 2.4) adds the broker's error message; Kafka 4.0 removed Metadata v0-v3, so v4-v8 are used where it can.
 */
const CLIENT: Record<Exclude<ApiName, 'ApiVersions'>, [number, number]> = {
  Produce: [3, 8],
  Metadata: [1, 8],
  InitProducerId: [0, 1],
  SaslHandshake: [1, 1],
  SaslAuthenticate: [0, 1],
};

export type Versions = Partial<Record<ApiName, number>>;

/** Asks the broker for its version ranges; the chosen version per API (absent: none in common). */
export async function negotiate(connection: Connection, timeoutMs: number): Promise<Versions> {
  const r = await connection.request(API.ApiVersions, 0, () => undefined, timeoutMs);
  const code = r.int16();
  if (code !== 0) throw new BrokerError(code, `ApiVersions v0 to ${connection.address}`);
  const ranges = new Map(r.array(() => [r.int16(), [r.int16(), r.int16()]] as const));
  const chosen: Versions = { ApiVersions: 0 };
  for (const [name, [min, max]] of Object.entries(CLIENT) as [ApiName, [number, number]][]) {
    const broker = ranges.get(API[name]);
    if (broker === undefined) continue;
    const version = Math.min(max, broker[1]);
    if (version >= min && version >= broker[0]) chosen[name] = version;
  }
  return chosen;
}

/** The version to use for `name`, or an error saying what the broker and this client speak. */
export function versionOf(versions: Versions, name: ApiName, address: string): number {
  const version = versions[name];
  if (version === undefined) {
    const [min, max] = CLIENT[name as Exclude<ApiName, 'ApiVersions'>];
    throw new Error(`${address} does not speak ${name} v${min}-v${max} (a broker older than Kafka 0.11?)`);
  }
  return version;
}
