import { crypto } from '../../lazy-builtins.js';
import type { ReadValue } from './msgpack-read.js';
import { encodeValue } from './msgpack-write.js';

/** The `security:` map: a shared key, and a user for servers that also authorize clients. */
export interface SecurityOptions {
  shared_key: string;
  /** The client host name sent in PING, part of the digest. */
  self_hostname: string;
  username?: string;
  password?: string;
}

const sha512Hex = (...parts: (string | Buffer)[]): string => {
  const hash = crypto().createHash('sha512');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
};

/** nonce and auth salt may come as str or bin; either way their bytes go into the digests. */
function bytesOf(value: ReadValue | undefined): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  return Buffer.alloc(0);
}

const isMap = (value: ReadValue | undefined): value is { [key: string]: ReadValue } =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value) && !('type' in value && 'data' in value);

export const isHelo = (value: ReadValue): boolean => Array.isArray(value) && value[0] === 'HELO';

/**
 * The client's side of the Forward handshake: from the server's HELO, the PING to send, and the check of its PONG
 * (authorized, and the server's digest proves it has the same shared key).
 */
export function answerHelo(helo: ReadValue, security: SecurityOptions): { ping: Buffer; checkPong: (pong: ReadValue) => void } {
  if (!Array.isArray(helo) || helo[0] !== 'HELO' || !isMap(helo[1])) throw new Error('the server sent something other than HELO to start the handshake');
  const options = helo[1];
  const nonce = bytesOf(options.nonce);
  const authSalt = bytesOf(options.auth);
  if (authSalt.length > 0 && security.username === undefined) {
    throw new Error('the server asks for a user (HELO auth); set security.username and security.password');
  }
  const salt = crypto().randomBytes(16).toString('hex');
  const { shared_key: key, self_hostname: hostname } = security;
  const username = authSalt.length > 0 ? security.username! : '';
  const password = authSalt.length > 0 ? sha512Hex(authSalt, username, security.password ?? '') : '';
  const ping = encodeValue(['PING', hostname, salt, sha512Hex(salt, hostname, nonce, key), username, password]);
  const checkPong = (pong: ReadValue): void => {
    if (!Array.isArray(pong) || pong[0] !== 'PONG') throw new Error('the server answered PING with something other than PONG');
    const [, authorized, reason, serverHostname, digest] = pong;
    if (authorized !== true) {
      throw new Error(`the server refused the handshake: ${typeof reason === 'string' && reason !== '' ? reason : '(no reason given)'}; check security.shared_key, username and password`);
    }
    if (typeof serverHostname !== 'string' || digest !== sha512Hex(salt, serverHostname, nonce, key)) {
      throw new Error("the server's PONG digest does not match security.shared_key: it does not have the same key");
    }
  };
  return { ping, checkPong };
}
