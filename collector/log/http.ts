// The transparency log over HTTP, read-only except for issuing a checkpoint on demand:
//   GET  /v1/log/<vendor>/checkpoint[?size=N | ?at=ISO]   the signed note (text/plain)
//   GET  /v1/log/<vendor>/tile/...                        C2SP tlog-tiles paths, as stored
//   GET  /v1/log/<vendor>/proof/inclusion?index=I[&size=N] or ?agent=ID&seq=S[&size=N]
//   GET  /v1/log/<vendor>/proof/consistency?from=M&to=N
//   POST /v1/log/<vendor>/checkpoint                      admin: issue one now
//   GET  /v1/log/checkpoint?from=N                        an agent, signed: its vendor's, with the proof from N
// Admin tokens read every vendor, auditor tokens their vendors only; to anyone else a vendor's
// log does not exist, whether or not it does.
import { authenticate, canRead, type Principal } from '../admin.js';
import { signedAgent, type AgentAuthDeps } from '../agent-auth.js';
import { vendorSchema } from '../contract.js';
import { CollectorError } from '../errors.js';
import type { EvidenceStore } from '../store.js';
import type { LogSet } from './logs.js';
import { signedProof } from './commands.js';
import { parseTilePath } from './tiles.js';
import { logPrefix } from './vendor-log.js';

export interface LogHttpDeps extends AgentAuthDeps {
  logs: LogSet;
  store: EvidenceStore;
}

/** GET /v1/log/checkpoint?from=N: an agent's own vendor log, its latest checkpoint, and the proof from N. */
async function agentCheckpoint(deps: LogHttpDeps, url: URL, authorization: string | undefined): Promise<LogAnswer> {
  const agent = await signedAgent(deps, 'GET', `${url.pathname}${url.search}`, authorization);
  const l = deps.logs.get(agent.record.vendor);
  const latest = l?.latest;
  if (l === undefined || latest === undefined) throw new CollectorError('COL_ERR_NOT_FOUND', 'no checkpoint of this vendor\'s log yet');
  const from = int(url, 'from', false);
  const consistency =
    from === undefined || from === 0 || from >= latest.size
      ? null
      : { from, to: latest.size, hashes: b64(l.tree.consistencyProof(from, latest.size)) };
  return { status: 200, body: { checkpoint: latest.note, consistency } };
}

export interface LogAnswer {
  status: number;
  body: Buffer | object;
  contentType?: string;
}

const ROUTE_RE = /^\/v1\/log\/([^/]+)\/(checkpoint|tile\/.+|proof\/inclusion|proof\/consistency)$/;

function int(url: URL, name: string, required: boolean): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null) {
    if (required) throw new CollectorError('COL_ERR_LOG_RANGE', `give ${name}`);
    return undefined;
  }
  if (!/^(0|[1-9]\d{0,14})$/.test(raw)) throw new CollectorError('COL_ERR_LOG_RANGE', `${name} must be a whole number`);
  return Number(raw);
}

const b64 = (hashes: Buffer[]) => hashes.map((h) => h.toString('base64'));

export async function handleLog(deps: LogHttpDeps, method: string, url: URL, authorization: string | undefined): Promise<LogAnswer | null> {
  if (url.pathname === '/v1/log/checkpoint' && method === 'GET') return agentCheckpoint(deps, url, authorization);
  const m = ROUTE_RE.exec(url.pathname);
  if (m === null) return null;
  const [, vendor = '', what = ''] = m;
  const who: Principal = await authenticate(deps.store, authorization, deps.now());
  if (!vendorSchema.safeParse(vendor).success || !canRead(who, vendor)) throw new CollectorError('COL_ERR_FORBIDDEN', 'this token does not read that vendor');
  const l = deps.logs.get(vendor);
  if (l === undefined) throw new CollectorError('COL_ERR_NOT_FOUND', 'this vendor has no log yet');

  if (what === 'checkpoint') {
    if (method === 'POST') {
      if (who.role !== 'admin') throw new CollectorError('COL_ERR_FORBIDDEN', 'issuing a checkpoint needs an admin token');
      const c = await l.issueCheckpoint(deps.now());
      return { status: 200, body: Buffer.from(c.note, 'utf8'), contentType: 'text/plain; charset=utf-8' };
    }
    if (method !== 'GET') throw new CollectorError('COL_ERR_METHOD');
    const size = int(url, 'size', false);
    const atRaw = url.searchParams.get('at');
    const at = atRaw === null ? undefined : new Date(atRaw);
    if (at !== undefined && Number.isNaN(at.getTime())) throw new CollectorError('COL_ERR_LOG_RANGE', 'at must be an ISO 8601 time');
    const c = size === undefined && at === undefined ? l.latest : l.checkpointFor({ ...(size === undefined ? {} : { size }), ...(at === undefined ? {} : { at }) });
    if (c === undefined) throw new CollectorError('COL_ERR_NOT_FOUND', 'no checkpoint at or before that');
    return { status: 200, body: Buffer.from(c.note, 'utf8'), contentType: 'text/plain; charset=utf-8' };
  }
  if (method !== 'GET') throw new CollectorError('COL_ERR_METHOD');

  if (what.startsWith('tile/')) {
    parseTilePath(what);
    const bytes = await deps.store.get(`${logPrefix(vendor)}${what}`);
    if (bytes === null) throw new CollectorError('COL_ERR_NOT_FOUND', 'no such tile');
    return { status: 200, body: bytes, contentType: 'application/octet-stream' };
  }

  if (what === 'proof/inclusion') {
    const agent = url.searchParams.get('agent');
    let index: number | undefined;
    if (agent !== null) {
      index = deps.logs.indexOf(agent, int(url, 'seq', true)!);
      if (index === undefined) throw new CollectorError('COL_ERR_NOT_FOUND', 'the log holds no entry for that agent and seq');
    } else index = int(url, 'index', true)!;
    const size = int(url, 'size', false);
    return { status: 200, body: signedProof(l, { index, ...(size === undefined ? {} : { size }) }) };
  }
  const to = int(url, 'to', false);
  return { status: 200, body: signedProof(l, { from: int(url, 'from', true)!, ...(to === undefined ? {} : { to }) }) };
}
