/**
 * What check-config (and the daemon's config log line) print of a sink's options, without its secrets: passwords,
 * tokens, keys and credential headers become `(redacted)`, and a URL's password too. Operators paste that output into
 * tickets; the values stay in the config file only.
 */
const REDACTED = '(redacted)';
const SECRET_KEY = /(^|_)(password|token|shared_key|api_key|secret)$/i;
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
