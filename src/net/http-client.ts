import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { gzip, https as httpsModule } from '../lazy-builtins.js';
import { tlsConnectOptions, type TlsOptions } from './tls-options.js';

export interface HttpClientOptions {
  /** Where requests go; a path given to post() replaces this URL's path. */
  url: URL;
  /** Sent with every request (auth, tenant, content type). */
  headers: Record<string, string>;
  /** For https URLs; verification is on by default. */
  tls: TlsOptions;
  /** A request (connect, send, whole response) that takes longer fails, and is retried. */
  timeoutMs: number;
  /** gzip request bodies (Content-Encoding: gzip). */
  gzip: boolean;
  /** zlib's compression level, 1 (fastest) to 9; default zlib's (6). */
  gzipLevel?: number;
  /** A longer response body is cut: it is only read for errors and per-item results. */
  maxResponseBytes?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const DEFAULT_MAX_RESPONSE_BYTES = 16 << 20;

/**
 * One keep-alive connection to one HTTP(S) peer, for a sink's requests (one in flight: the delivery loop waits for
 * each). Written on node:http rather than a client library: a sink needs POST, gzip, TLS options and a timeout, and
 * each library of that size brings more code than this file.
 */
export class HttpClient {
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly request: typeof httpRequest;
  private closed = false;

  constructor(private readonly options: HttpClientOptions) {
    if (options.url.protocol === 'https:') {
      const https = httpsModule();
      this.agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...tlsConnectOptions(options.tls) });
      this.request = https.request as typeof httpRequest;
    } else {
      this.agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
      this.request = httpRequest;
    }
  }

  /** POSTs `body`; resolves with any response, rejects on a network error or the timeout. */
  async post(body: Buffer, headers: Record<string, string> = {}, path?: string): Promise<HttpResponse> {
    const { url, timeoutMs } = this.options;
    const payload = this.options.gzip ? await gzip(body, { level: this.options.gzipLevel }) : body;
    // Closed while compressing: a request now would open a new connection that close() can no longer end.
    if (this.closed) throw new Error('the HTTP client is closed');
    const requestOptions: RequestOptions = {
      method: 'POST',
      agent: this.agent,
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? undefined : Number(url.port),
      path: path ?? `${url.pathname}${url.search}`,
      headers: {
        ...this.options.headers,
        ...headers,
        'content-length': String(payload.length),
        ...(this.options.gzip ? { 'content-encoding': 'gzip' } : {}),
      },
      ...(url.username === '' ? {} : { auth: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` }),
    };
    const maxBytes = this.options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = this.request(requestOptions, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size >= maxBytes) return;
          chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url.origin} within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Ends the connection; a pending post() fails, and later ones too. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
  }
}
