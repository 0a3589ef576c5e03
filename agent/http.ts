// The agent's HTTP client (undici). Plain HTTP only to loopback; HTTPS may pin a CA file.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import { errorBodySchema } from '../collector/contract.js';
import { AgentError } from './errors.js';

export interface HttpOptions {
  caFile?: string;
  /** The collector keeps idle connections 65 s; we drop ours well before it does. */
  keepAliveTimeoutMs?: number;
  timeoutMs?: number;
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

export function checkCollectorUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AgentError('AGT_ERR_CONFIG', `not a URL: ${raw}`);
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    throw new AgentError('AGT_ERR_INSECURE_URL', `refusing plain HTTP to ${url.hostname}: use https://, or a loopback address`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AgentError('AGT_ERR_CONFIG', `unsupported scheme ${url.protocol}`);
  return url;
}

export interface HttpResponse {
  status: number;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
}

export class CollectorClient {
  readonly base: URL;
  readonly #dispatcher: Dispatcher;
  readonly #timeoutMs: number;

  constructor(collectorUrl: string, opts: HttpOptions = {}) {
    this.base = checkCollectorUrl(collectorUrl);
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#dispatcher = new Agent({
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30_000,
      connect: opts.caFile === undefined ? {} : { ca: readFileSync(opts.caFile) },
    });
  }

  async send(method: 'GET' | 'POST', pathname: string, body?: Buffer, headers: Record<string, string> = {}): Promise<HttpResponse> {
    const url = new URL(pathname, this.base);
    try {
      const res = await request(url, {
        method,
        body,
        headers,
        dispatcher: this.#dispatcher,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) chunks.push(chunk as Buffer);
      return { status: res.statusCode, body: Buffer.concat(chunks), headers: res.headers };
    } catch (err) {
      throw new AgentError('AGT_ERR_COLLECTOR_UNREACHABLE', `cannot reach ${url.origin}: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}

/** The collector's `{ error: { code, message } }`, or a summary when the body is something else. */
export function describeError(res: HttpResponse): string {
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(res.body.toString('utf8')));
    if (parsed.success) return `${parsed.data.error.code}: ${parsed.data.error.message}`;
  } catch {
    // not JSON
  }
  return `HTTP ${res.status}`;
}
