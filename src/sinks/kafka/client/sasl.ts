// SASL on a new connection: SaslHandshake v1 names the mechanism, then SaslAuthenticate carries each message
// (Kafka 1.0+; the raw framing of handshake v0 is not spoken). PLAIN as RFC 4616, SCRAM-SHA-256/512 as RFC 5802.
import { crypto } from '../../../lazy-builtins.js';
import type { Connection } from './connection.js';
import { BrokerError } from './errors.js';
import { API, versionOf, type Versions } from './versions.js';

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

export interface SaslCredentials {
  mechanism: SaslMechanism;
  username: string;
  /** Called at each authentication, so that a rotated secret is picked up. */
  password(): string;
}

/** One SaslAuthenticate round trip: the server's answer bytes, or a BrokerError (the broker then closes). */
async function exchange(connection: Connection, version: number, message: string, timeoutMs: number): Promise<string> {
  const r = await connection.request(API.SaslAuthenticate, version, (w) => w.bytes(Buffer.from(message)), timeoutMs);
  const code = r.int16();
  const error = r.string();
  const answer = r.bytes();
  if (code !== 0) throw new BrokerError(code, `SASL authentication to ${connection.address}`, error);
  return answer?.toString() ?? '';
}

/** RFC 5802's saslname: `=` and `,` escaped. */
const saslName = (name: string): string => name.replace(/=/g, '=3D').replace(/,/g, '=2C');

async function scram(connection: Connection, version: number, hash: 'sha256' | 'sha512', credentials: SaslCredentials, timeoutMs: number): Promise<void> {
  const nonce = crypto().randomBytes(24).toString('base64');
  const clientFirstBare = `n=${saslName(credentials.username)},r=${nonce}`;
  const serverFirst = await exchange(connection, version, `n,,${clientFirstBare}`, timeoutMs);
  const attributes = new Map(serverFirst.split(',').map((part) => [part[0], part.slice(2)]));
  const serverNonce = attributes.get('r') ?? '';
  const iterations = Number(attributes.get('i'));
  if (!serverNonce.startsWith(nonce) || !Number.isInteger(iterations) || iterations < 1) {
    throw new Error(`SASL SCRAM with ${connection.address}: unexpected server message ${JSON.stringify(serverFirst)}`);
  }
  const salted = crypto().pbkdf2Sync(credentials.password(), Buffer.from(attributes.get('s') ?? '', 'base64'), iterations, hash === 'sha256' ? 32 : 64, hash);
  const hmac = (key: Buffer, text: string): Buffer => crypto().createHmac(hash, key).update(text).digest();
  const clientFinalBare = `c=biws,r=${serverNonce}`;
  const authMessage = `${clientFirstBare},${serverFirst},${clientFinalBare}`;
  const clientKey = hmac(salted, 'Client Key');
  const signature = hmac(crypto().createHash(hash).update(clientKey).digest(), authMessage);
  const proof = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i])).toString('base64');
  const serverFinal = await exchange(connection, version, `${clientFinalBare},p=${proof}`, timeoutMs);
  const expected = hmac(hmac(salted, 'Server Key'), authMessage);
  const verifier = Buffer.from(/(?:^|,)v=([^,]*)/.exec(serverFinal)?.[1] ?? '', 'base64');
  // The server proves it knows the password too (a spoofed broker cannot).
  if (verifier.length !== expected.length || !crypto().timingSafeEqual(verifier, expected)) {
    throw new Error(`SASL SCRAM with ${connection.address}: the server's signature does not match`);
  }
}

export async function authenticate(connection: Connection, versions: Versions, credentials: SaslCredentials, timeoutMs: number): Promise<void> {
  const mechanism = credentials.mechanism.toUpperCase();
  const handshake = versionOf(versions, 'SaslHandshake', connection.address);
  const r = await connection.request(API.SaslHandshake, handshake, (w) => w.string(mechanism), timeoutMs);
  const code = r.int16();
  const offered = r.array(() => r.string());
  if (code !== 0) throw new BrokerError(code, `SASL ${mechanism} with ${connection.address} (it offers ${offered.join(', ')})`);
  const version = versionOf(versions, 'SaslAuthenticate', connection.address);
  if (credentials.mechanism === 'plain') {
    await exchange(connection, version, `\0${credentials.username}\0${credentials.password()}`, timeoutMs);
  } else {
    await scram(connection, version, credentials.mechanism === 'scram-sha-256' ? 'sha256' : 'sha512', credentials, timeoutMs);
  }
}
