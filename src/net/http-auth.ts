import { ConfigError, type ConfigReader } from '../config-reader.js';

/**
 * An HTTP sink's `auth:` map, as check-config prints it: HTTP basic, a bearer token, or (for a sink that asks for it)
 * an Elasticsearch API key.
 */
export type HttpAuth = { user: string; password: string } | { bearer_token: string } | { api_key: string };

/**
 * Reads `auth` (absent: undefined). Basic credentials may instead be in the url (`https://user:pass@host/`), not
 * both; nor may `headers` set Authorization beside it.
 */
export function parseAuth(
  reader: ConfigReader,
  url: URL,
  headers: Record<string, string>,
  options: { apiKey?: boolean } = {},
): HttpAuth | undefined {
  if (!reader.has('auth')) return undefined;
  const auth = reader.child('auth');
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(auth.path, undefined, 'conflicts with the user and password in url; give them in one place');
  }
  if (Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')) {
    throw new ConfigError(auth.path, undefined, 'conflicts with an Authorization header in headers');
  }
  let parsed: HttpAuth;
  if (options.apiKey === true && auth.has('api_key')) {
    for (const name of ['user', 'password', 'bearer_token']) {
      if (auth.has(name)) throw new ConfigError(auth.key(name), undefined, 'cannot be combined with api_key');
    }
    parsed = { api_key: auth.string('api_key') };
  } else if (auth.has('bearer_token')) {
    for (const name of ['user', 'password']) {
      if (auth.has(name)) throw new ConfigError(auth.key(name), undefined, 'cannot be combined with bearer_token');
    }
    parsed = { bearer_token: auth.string('bearer_token') };
  } else if (auth.has('user')) {
    parsed = { user: auth.string('user'), password: auth.string('password') };
    if (parsed.user.includes(':')) throw new ConfigError(auth.key('user'), parsed.user, 'cannot contain ":" (HTTP basic authentication)');
  } else {
    throw new ConfigError(auth.path, undefined, `needs user and password (basic)${options.apiKey === true ? ', bearer_token or api_key' : ' or bearer_token'}`);
  }
  auth.done();
  return parsed;
}

/** The Authorization header of `auth`. */
export function authorizationHeader(auth: HttpAuth): string {
  if ('bearer_token' in auth) return `Bearer ${auth.bearer_token}`;
  if ('api_key' in auth) return `ApiKey ${auth.api_key}`;
  return `Basic ${Buffer.from(`${auth.user}:${auth.password}`, 'utf8').toString('base64')}`;
}
