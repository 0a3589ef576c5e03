import { describe, expect, it } from 'vitest';
import { configSchema, describeListener, evaluate, factsSchema, type Facts, type Listener } from '../../../checks/open_ports/index.js';

function listener(over: Partial<Listener>): Listener {
  return {
    protocol: 'tcp',
    family: 'ipv4',
    address: '0.0.0.0',
    port: 22,
    scope: 'wildcard',
    uid: 0,
    inode: 1000,
    process: { pid: 500, name: 'sshd' },
    processState: 'resolved',
    ...over,
  };
}

function facts(...listeners: Listener[]): Facts {
  return factsSchema.parse({ listeners, missingSources: [], processScan: { pids: 10, denied: 0, vanished: 0 } });
}

const cfg = (raw: unknown) => configSchema.parse(raw);

describe('open_ports config', () => {
  it('parses {} to the defaults', () => {
    expect(cfg({})).toEqual({ allow: [], allowLoopback: true });
  });

  it.each([
    ['an unknown key', { allow: [], extra: 1 }],
    ['port 0', { allow: [{ protocol: 'tcp', port: 0 }] }],
    ['port 65536', { allow: [{ protocol: 'tcp', port: 65536 }] }],
    ['a reversed range', { allow: [{ protocol: 'udp', port: { from: 200, to: 100 } }] }],
    ['an unknown protocol', { allow: [{ protocol: 'sctp', port: 22 }] }],
    ['an empty process name', { allow: [{ protocol: 'tcp', port: 22, process: '' }] }],
  ])('refuses %s', (_what, raw) => {
    expect(configSchema.safeParse(raw).success).toBe(false);
  });
});

describe('open_ports evaluate', () => {
  it('passes with no listeners', () => {
    expect(evaluate(facts(), cfg({}))).toEqual({ status: 'pass', reasons: [] });
  });

  it('fails a wildcard listener that is not allowed, one reason per listener', () => {
    const ev = evaluate(
      facts(listener({}), listener({ family: 'ipv6', address: '::', port: 80, inode: 1001, process: { pid: 600, name: 'nginx' } })),
      cfg({}),
    );
    expect(ev.status).toBe('fail');
    expect(ev.reasons).toEqual([
      expect.objectContaining({ code: 'CHK_FAIL_LISTENER_NOT_ALLOWED', subject: 'tcp/0.0.0.0:22 (sshd)' }),
      expect.objectContaining({ code: 'CHK_FAIL_LISTENER_NOT_ALLOWED', subject: 'tcp/[::]:80 (nginx)' }),
    ]);
  });

  it('allows by protocol and port, and by port range', () => {
    const f = facts(listener({}), listener({ protocol: 'udp', port: 5353, inode: 1002, process: { pid: 700, name: 'avahi-daemon' } }));
    expect(evaluate(f, cfg({ allow: [{ protocol: 'tcp', port: 22 }, { protocol: 'udp', port: { from: 5000, to: 6000 } }] })).status).toBe('pass');
    // The protocol must match too.
    const ev = evaluate(f, cfg({ allow: [{ protocol: 'udp', port: 22 }, { protocol: 'udp', port: { from: 5000, to: 6000 } }] }));
    expect(ev.reasons.map((r) => r.subject)).toEqual(['tcp/0.0.0.0:22 (sshd)']);
  });

  it('treats a specific address like a wildcard one', () => {
    const f = facts(listener({ address: '10.0.0.5', scope: 'specific', port: 8080 }));
    expect(evaluate(f, cfg({})).status).toBe('fail');
    expect(evaluate(f, cfg({ allow: [{ protocol: 'tcp', port: 8080 }] })).status).toBe('pass');
  });

  it('allows loopback listeners unless allowLoopback is false', () => {
    const f = facts(
      listener({ address: '127.0.0.1', scope: 'loopback', port: 5432, process: { pid: 800, name: 'postgres' } }),
      listener({ family: 'ipv6', address: '::1', scope: 'loopback', port: 6379, process: null, processState: 'not_found' }),
    );
    expect(evaluate(f, cfg({})).status).toBe('pass');
    const ev = evaluate(f, cfg({ allowLoopback: false }));
    expect(ev.status).toBe('fail');
    expect(ev.reasons.map((r) => r.subject)).toEqual(['tcp/127.0.0.1:5432 (postgres)', 'tcp/[::1]:6379 (process unknown)']);
  });

  it('matches a process-constrained entry against the process name exactly', () => {
    const allow = cfg({ allow: [{ protocol: 'tcp', port: 22, process: 'sshd' }] });
    expect(evaluate(facts(listener({})), allow).status).toBe('pass');
    const other = evaluate(facts(listener({ process: { pid: 501, name: 'dropbear' } })), allow);
    expect(other.status).toBe('fail');
    expect(other.reasons[0]).toMatchObject({ code: 'CHK_FAIL_LISTENER_NOT_ALLOWED', subject: 'tcp/0.0.0.0:22 (dropbear)' });
    expect(evaluate(facts(listener({ process: { pid: 502, name: 'SSHD' } })), allow).status).toBe('fail');
  });

  it('any matching entry is enough: a process-free entry allows whatever process holds the port', () => {
    const allow = cfg({ allow: [{ protocol: 'tcp', port: 22, process: 'sshd' }, { protocol: 'tcp', port: { from: 1, to: 1023 } }] });
    expect(evaluate(facts(listener({ process: { pid: 501, name: 'dropbear' } })), allow).status).toBe('pass');
  });

  it('is unknown when only process-constrained entries match and the process is unknown', () => {
    const allow = cfg({ allow: [{ protocol: 'tcp', port: 22, process: 'sshd' }] });
    const unreadable = evaluate(facts(listener({ process: null, processState: 'unreadable' })), allow);
    expect(unreadable).toEqual({
      status: 'unknown',
      reasons: [expect.objectContaining({ code: 'CHK_ERR_UNRESOLVED', subject: 'tcp/0.0.0.0:22 (process unknown)' })],
    });
    expect(evaluate(facts(listener({ process: null, processState: 'not_found' })), allow).status).toBe('unknown');
    // The process exited before its name could be read.
    const nameless = evaluate(facts(listener({ process: { pid: 9, name: null } })), allow);
    expect(nameless.reasons[0]).toMatchObject({ code: 'CHK_ERR_UNRESOLVED', subject: 'tcp/0.0.0.0:22 (pid 9)' });
  });

  it('an unreadable process alone never fails: a process-free entry allows the listener', () => {
    const f = facts(listener({ process: null, processState: 'unreadable' }));
    expect(evaluate(f, cfg({ allow: [{ protocol: 'tcp', port: 22 }] }))).toEqual({ status: 'pass', reasons: [] });
  });

  it('fail wins over unknown, and lists only the listeners that are not allowed', () => {
    const f = facts(
      listener({ process: null, processState: 'unreadable' }),
      listener({ port: 3306, inode: 1003, process: null, processState: 'unreadable' }),
    );
    const ev = evaluate(f, cfg({ allow: [{ protocol: 'tcp', port: 22, process: 'sshd' }] }));
    expect(ev.status).toBe('fail');
    expect(ev.reasons).toEqual([expect.objectContaining({ code: 'CHK_FAIL_LISTENER_NOT_ALLOWED', subject: 'tcp/0.0.0.0:3306 (process unknown)' })]);
  });

  it('names pre-forked workers of one program once', () => {
    const f = facts(
      listener({ port: 80, inode: 1, process: { pid: 10, name: 'nginx' } }),
      listener({ port: 80, inode: 2, process: { pid: 11, name: 'nginx' } }),
    );
    expect(evaluate(f, cfg({})).reasons.map((r) => r.subject)).toEqual(['tcp/0.0.0.0:80 (nginx)']);
  });

  it('describes IPv6 and IPv4-mapped addresses in brackets', () => {
    expect(describeListener(listener({ protocol: 'udp', family: 'ipv6', address: '::ffff:10.0.0.6', port: 53, process: { pid: 3, name: 'dnsmasq' } }))).toBe(
      'udp/[::ffff:10.0.0.6]:53 (dnsmasq)',
    );
  });
});
