/**
 * What check-config prints of a sink's options, and what a config error shows of a value, without secrets:
 * passwords, tokens, keys and credential headers become `(redacted)`, and a URL's password too. Operators paste that
 * output into tickets, and the helper's errors go to the agent's log; the values stay in the config file only.
 */
const REDACTED = '(redacted)';
const SECRET_KEY = /(^|_)(password|passwd|token|shared_key|api_key|secret)$/i;
const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|x-api-key|x-auth-token|x-splunk-request-channel)$/i;

export function redactSecrets(value: unknown, key = ''): unknown {
  if (typeof value === 'string') {
    if (SECRET_KEY.test(key)) return REDACTED;
    return key === 'url' ? redactUrlPassword(value) : value;
  }
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([name, item]) => [
      name,
      key === 'headers' && SECRET_HEADER.test(name) ? REDACTED : redactSecrets(item, name),
    ]),
  );
}

function redactUrlPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = REDACTED;
    return parsed.toString();
  } catch {
    return url;
  }
}

/** A value as a config error may show it: `key` is the full key path (`sinks.x.auth.password`). */
export function redactValue(key: string, value: unknown): unknown {
  const name = key.slice(key.lastIndexOf('.') + 1);
  if (SECRET_KEY.test(name)) return REDACTED;
  if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return redactUrlPassword(value);
  const parent = key.slice(0, key.lastIndexOf('.'));
  if (parent.endsWith('.headers') && SECRET_HEADER.test(name)) return REDACTED;
  return redactSecrets(value, name);
}
