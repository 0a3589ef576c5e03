// The real check on this machine: listeners opened here must be found with our pid and name.
import { once } from 'node:events';
import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RealHostIO } from '../../../checks/host-io.js';
import { openPorts, type Facts } from '../../../checks/open_ports/index.js';
import { runCheck } from '../../../checks/runner.js';

interface Opened {
  protocol: 'tcp' | 'udp';
  family: 'ipv4' | 'ipv6';
  host: string;
  scope: 'wildcard' | 'loopback';
  port: number;
}

const wanted: Omit<Opened, 'port'>[] = [];
for (const protocol of ['tcp', 'udp'] as const) {
  wanted.push(
    { protocol, family: 'ipv4', host: '0.0.0.0', scope: 'wildcard' },
    { protocol, family: 'ipv6', host: '::', scope: 'wildcard' },
    { protocol, family: 'ipv4', host: '127.0.0.1', scope: 'loopback' },
    { protocol, family: 'ipv6', host: '::1', scope: 'loopback' },
  );
}

const closers: (() => Promise<void>)[] = [];
const opened: Opened[] = [];

async function open(w: Omit<Opened, 'port'>): Promise<Opened> {
  if (w.protocol === 'tcp') {
    const server = net.createServer();
    // ipv6Only keeps [::] a pure IPv6 listener, as the opened entry says.
    server.listen({ host: w.host, port: 0, ipv6Only: w.family === 'ipv6' });
    await once(server, 'listening');
    closers.push(() => new Promise((r) => server.close(() => r())));
    return { ...w, port: (server.address() as net.AddressInfo).port };
  }
  const socket = dgram.createSocket({ type: w.family === 'ipv6' ? 'udp6' : 'udp4', ipv6Only: w.family === 'ipv6' });
  socket.bind(0, w.host);
  await once(socket, 'listening');
  closers.push(() => new Promise((r) => socket.close(() => r())));
  return { ...w, port: socket.address().port };
}

describe('open_ports on this machine (live)', () => {
  beforeAll(async () => {
    for (const w of wanted) opened.push(await open(w));
  });
  afterAll(async () => {
    await Promise.all(closers.map((c) => c()));
  });

  it('finds each listener this process opened, with its scope, family, pid and name', async () => {
    const finding = await runCheck(openPorts, { io: new RealHostIO() });
    expect(finding.status, JSON.stringify(finding.reasons)).not.toBe('unknown');
    const facts = finding.facts as Facts;
    const name = readFileSync('/proc/self/comm', 'utf8').trim();
    for (const o of opened) {
      const found = facts.listeners.filter((l) => l.protocol === o.protocol && l.port === o.port && l.address === o.host);
      expect(found, `${o.protocol} ${o.host}:${o.port}`).toEqual([
        expect.objectContaining({ family: o.family, scope: o.scope, process: { pid: process.pid, name }, processState: 'resolved' }),
      ]);
    }
  });

  it('does not fail the listeners an allow-list names', async () => {
    const allow = opened.map((o) => ({ protocol: o.protocol, port: o.port }));
    const finding = await runCheck(openPorts, { io: new RealHostIO(), configs: { open_ports: { allow, allowLoopback: false } } });
    const subjects = finding.reasons.filter((r) => r.code.startsWith('CHK_FAIL')).map((r) => r.subject ?? '');
    for (const o of opened) {
      const host = o.family === 'ipv6' ? `[${o.host}]` : o.host;
      expect(subjects.filter((s) => s.startsWith(`${o.protocol}/${host}:${o.port} `))).toEqual([]);
    }
    // Without the allow-list the wildcard ones do fail, so the assertion above can fail too.
    const strict = await runCheck(openPorts, { io: new RealHostIO(), configs: { open_ports: { allowLoopback: false } } });
    const strictSubjects = strict.reasons.map((r) => r.subject ?? '');
    for (const o of opened) {
      const host = o.family === 'ipv6' ? `[${o.host}]` : o.host;
      expect(strictSubjects.some((s) => s.startsWith(`${o.protocol}/${host}:${o.port} `)), `${o.protocol} ${host}:${o.port}`).toBe(true);
    }
  });
});
