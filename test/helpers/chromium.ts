// Headless Chromium for tests of the audit report: a browser driven over the DevTools protocol, to
// open a page and see what it did (console messages, exceptions, log entries, network requests)
// and read its DOM. Node 20 has no WebSocket client, so a minimal one (RFC 6455, client side, text
// frames) runs over node:http's upgrade.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findChromium } from '../../collector/audit/report.js';

/** The Chromium the tests use; throws, saying how to get one, when there is none (these tests never skip). */
export function requireChromium(): string {
  const chromium = findChromium();
  if (chromium === null) {
    throw new Error('headless Chromium is required for the audit report tests: install it (Debian: apt-get install chromium) or set VCM_CHROMIUM to its path');
  }
  try {
    accessSync(chromium, constants.X_OK);
  } catch {
    throw new Error(`headless Chromium is required for the audit report tests: ${chromium} (from VCM_CHROMIUM) is not an executable`);
  }
  return chromium;
}

// --- WebSocket (client side) ------------------------------------------------------------------

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

class WebSocketClient {
  private buf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private closed = false;

  constructor(
    private readonly socket: Duplex,
    private readonly onMessage: (text: string) => void,
    private readonly onClose: (why: string) => void,
  ) {
    socket.on('data', (d: Buffer) => this.receive(d));
    socket.on('close', () => this.closeWith('socket closed'));
    socket.on('error', (err: Error) => this.closeWith(`socket error: ${err.message}`));
  }

  static connect(url: string, onMessage: (text: string) => void, onClose: (why: string) => void): Promise<WebSocketClient> {
    const u = new URL(url);
    const key = randomBytes(16).toString('base64');
    const expected = createHash('sha1').update(key + WS_GUID).digest('base64');
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key },
      });
      req.once('upgrade', (res, socket, head) => {
        if (res.headers['sec-websocket-accept'] !== expected) {
          socket.destroy();
          reject(new Error('WebSocket handshake: wrong Sec-WebSocket-Accept'));
          return;
        }
        const ws = new WebSocketClient(socket, onMessage, onClose);
        if (head.length > 0) ws.receive(head);
        resolve(ws);
      });
      req.once('response', (res) => reject(new Error(`WebSocket handshake refused: HTTP ${res.statusCode}`)));
      req.once('error', reject);
      req.end();
    });
  }

  send(text: string): void {
    this.frame(0x1, Buffer.from(text, 'utf8'));
  }

  close(): void {
    if (this.closed) return;
    this.frame(0x8, Buffer.from([0x03, 0xe8]));
    this.socket.end();
  }

  private frame(opcode: number, payload: Buffer): void {
    const mask = randomBytes(4);
    const len = payload.length;
    const head = len < 126 ? Buffer.alloc(2) : len < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    if (len < 126) head[1] = 0x80 | len;
    else if (len < 65_536) {
      head[1] = 0x80 | 126;
      head.writeUInt16BE(len, 2);
    } else {
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(len), 2);
    }
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i % 4]!;
    this.socket.write(Buffer.concat([head, mask, body]));
  }

  private receive(data: Buffer): void {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      let len = b1 & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        offset = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const maskKey = masked ? this.buf.subarray(offset, offset + 4) : null;
      if (masked) offset += 4;
      if (this.buf.length < offset + len) return;
      const payload = Buffer.from(this.buf.subarray(offset, offset + len));
      if (maskKey) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ maskKey[i % 4]!;
      this.buf = this.buf.subarray(offset + len);
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      if (opcode === 0x8) {
        this.closeWith('closed by the browser');
        this.socket.end();
        return;
      }
      if (opcode === 0x9) {
        this.frame(0xa, payload);
        continue;
      }
      if (opcode === 0xa) continue;
      // Text (0x1), binary (0x2) or a continuation (0x0) of either.
      this.fragments.push(payload);
      if (fin) {
        const text = Buffer.concat(this.fragments).toString('utf8');
        this.fragments = [];
        this.onMessage(text);
      }
    }
  }

  private closeWith(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(why);
  }
}

// --- DevTools protocol ------------------------------------------------------------------------

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
  sessionId?: string;
}

type Listener = (method: string, params: Record<string, unknown>, sessionId: string | undefined) => void;

class Cdp {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void; method: string }>();
  private readonly listeners = new Set<Listener>();
  private ws: WebSocketClient | undefined;
  private closedWhy: string | undefined;

  async connect(url: string): Promise<void> {
    this.ws = await WebSocketClient.connect(
      url,
      (text) => this.dispatch(JSON.parse(text) as CdpMessage),
      (why) => {
        this.closedWhy = why;
        for (const p of this.pending.values()) p.reject(new Error(`DevTools connection ${why} (during ${p.method})`));
        this.pending.clear();
      },
    );
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    if (this.ws === undefined || this.closedWhy !== undefined) return Promise.reject(new Error(`DevTools connection ${this.closedWhy ?? 'not open'}`));
    const id = this.nextId++;
    const ws = this.ws;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      ws.send(JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) }));
    });
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.ws?.close();
  }

  private dispatch(msg: CdpMessage): void {
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      if (p === undefined) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result ?? {});
      return;
    }
    if (msg.method !== undefined) for (const l of this.listeners) l(msg.method, msg.params ?? {}, msg.sessionId);
  }
}

// --- Browser and pages ------------------------------------------------------------------------

export interface ConsoleEntry {
  /** Runtime.consoleAPICalled's type (log, error, warning...), or Log.entryAdded's level (error, warning...). */
  level: string;
  source: string;
  text: string;
}

export interface PageVisit {
  /** Console API calls, exceptions thrown and browser log entries (CSP violations, failed loads...). */
  console: ConsoleEntry[];
  /** URLs of every request the page made, its own document first. */
  requests: string[];
  /** Evaluates an expression in the page and returns its value (JSON-serialisable). */
  evaluate<T>(expression: string): Promise<T>;
  close(): Promise<void>;
}

export interface Browser {
  open(url: string, opts?: { timeoutMs?: number }): Promise<PageVisit>;
  close(): Promise<void>;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v) ?? '';
}

/** What one console API argument (a RemoteObject) prints as. */
function remoteText(arg: unknown): string {
  const o = arg as { value?: unknown; description?: string; unserializableValue?: string; type?: string };
  if (o.value !== undefined) return str(o.value);
  return o.description ?? o.unserializableValue ?? o.type ?? '';
}

function waitForDevToolsUrl(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`Chromium did not open its DevTools port within ${timeoutMs} ms:\n${err.slice(-2000)}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`Chromium exited (${code ?? signal}) before opening its DevTools port:\n${err.slice(-2000)}`));
    });
  });
}

/** Starts headless Chromium with a throwaway profile and a DevTools port on loopback. */
export async function launchBrowser(chromium: string, opts: { timeoutMs?: number } = {}): Promise<Browser> {
  const profile = await mkdtemp(path.join(tmpdir(), 'vcm-cdp-'));
  const child = spawn(
    chromium,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-extensions',
      '--remote-debugging-address=127.0.0.1',
      '--remote-debugging-port=0',
      `--user-data-dir=${profile}`,
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await rm(profile, { recursive: true, force: true });
  };
  const cdp = new Cdp();
  try {
    await cdp.connect(await waitForDevToolsUrl(child, opts.timeoutMs ?? 20_000));
  } catch (err) {
    await kill();
    throw err;
  }

  return {
    async open(url, o = {}) {
      const timeoutMs = o.timeoutMs ?? 15_000;
      const { targetId } = (await cdp.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
      const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
      const consoleEntries: ConsoleEntry[] = [];
      const requests: string[] = [];
      let loaded: () => void = () => undefined;
      const load = new Promise<void>((resolve) => (loaded = resolve));
      const off = cdp.on((method, params, sid) => {
        if (sid !== sessionId) return;
        if (method === 'Runtime.consoleAPICalled') {
          const args = (params.args as unknown[] | undefined) ?? [];
          consoleEntries.push({ level: str(params.type), source: 'console-api', text: args.map(remoteText).join(' ') });
        } else if (method === 'Runtime.exceptionThrown') {
          const d = params.exceptionDetails as { text?: string; exception?: { description?: string } } | undefined;
          consoleEntries.push({ level: 'error', source: 'exception', text: `${d?.text ?? ''} ${d?.exception?.description ?? ''}`.trim() });
        } else if (method === 'Log.entryAdded') {
          const e = params.entry as { level?: string; source?: string; text?: string; url?: string } | undefined;
          consoleEntries.push({ level: e?.level ?? '', source: e?.source ?? 'log', text: `${e?.text ?? ''}${e?.url ? ` (${e.url})` : ''}` });
        } else if (method === 'Network.requestWillBeSent') {
          const r = params.request as { url?: string } | undefined;
          requests.push(r?.url ?? '');
        } else if (method === 'Page.loadEventFired') {
          loaded();
        }
      });
      const closeTarget = async () => {
        off();
        await cdp.send('Target.closeTarget', { targetId }).catch(() => undefined);
      };
      try {
        for (const domain of ['Runtime', 'Log', 'Network', 'Page']) await cdp.send(`${domain}.enable`, {}, sessionId);
        const nav = (await cdp.send('Page.navigate', { url }, sessionId)) as { errorText?: string };
        if (nav.errorText) throw new Error(`navigating to ${url}: ${nav.errorText}`);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          load,
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${url} did not load within ${timeoutMs} ms`)), timeoutMs))),
        ]).finally(() => clearTimeout(timer));
        // Let the browser deliver what it reports right after the load event.
        await cdp.send('Runtime.evaluate', { expression: 'document.readyState', returnByValue: true }, sessionId);
      } catch (err) {
        await closeTarget();
        throw err;
      }
      return {
        console: consoleEntries,
        requests,
        async evaluate<T>(expression: string): Promise<T> {
          const r = (await cdp.send('Runtime.evaluate', { expression, returnByValue: true }, sessionId)) as {
            result?: { value?: unknown };
            exceptionDetails?: { text?: string; exception?: { description?: string } };
          };
          if (r.exceptionDetails) throw new Error(`evaluate: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text ?? 'failed'}`);
          return r.result?.value as T;
        },
        close: closeTarget,
      };
    },
    async close() {
      await cdp.send('Browser.close').catch(() => undefined);
      cdp.close();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      await kill();
    },
  };
}
