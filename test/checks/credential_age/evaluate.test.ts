import { describe, expect, it } from 'vitest';
import {
  configSchema,
  credentialAge,
  credentialSubject,
  DEFAULT_MAX_AGE_DAYS,
  evaluate,
  factsSchema,
  type Account,
  type Credential,
  type Facts,
  type Source,
} from '../../../checks/credential_age/index.js';
import { evaluateFacts } from '../../../checks/runner.js';

function cred(over: Partial<Credential>): Credential {
  return { kind: 'password', account: 'alice', path: null, dateFrom: 'shadow', lastChanged: '2026-01-01', ageDays: 10, active: true, ...over };
}

function account(over: Partial<Account>): Account {
  return { name: 'alice', uid: 1000, home: '/home/alice', shell: '/bin/bash', loginShell: true, password: 'set', enabled: true, ...over };
}

function facts(credentials: Credential[], more: { accounts?: Account[]; sources?: Source[] } = {}): Facts {
  return factsSchema.parse({
    observedAt: '2026-11-22T12:00:00.000Z',
    scope: { minUid: 1000, includeRoot: true },
    accounts: more.accounts ?? [],
    credentials,
    sources: more.sources ?? [{ path: '/etc/shadow', kinds: ['password'], state: 'read' }],
  });
}

const cfg = (raw: unknown = {}) => configSchema.parse(raw);
const codes = (f: Facts, raw?: unknown) => evaluate(f, cfg(raw)).reasons.map((r) => r.code);

describe('credential_age config', () => {
  it('parses {} to the defaults', () => {
    expect(cfg()).toEqual({ maxAgeDays: { ...DEFAULT_MAX_AGE_DAYS }, minUid: null, includeRoot: true, failOnPasswordless: true });
    expect(DEFAULT_MAX_AGE_DAYS).toEqual({ password: 365, ssh_private_key: 365, ssh_authorized_keys: 365, ssh_host_key: 1095, idp_password: 365, idp_api_token: 365 });
  });

  it('fills the kinds a partial maxAgeDays leaves out', () => {
    expect(cfg({ maxAgeDays: { password: 90, ssh_host_key: null } }).maxAgeDays).toEqual({
      password: 90,
      ssh_private_key: 365,
      ssh_authorized_keys: 365,
      ssh_host_key: null,
      idp_password: 365,
      idp_api_token: 365,
    });
  });

  it.each([
    ['an unknown key', { maxAge: 1 }],
    ['an unknown kind', { maxAgeDays: { api_token: 30 } }],
    ['zero days', { maxAgeDays: { password: 0 } }],
    ['a fraction', { maxAgeDays: { password: 1.5 } }],
    ['a negative minUid', { minUid: -1 }],
    ['a string flag', { includeRoot: 'yes' }],
  ])('refuses %s', (_what, raw) => {
    expect(configSchema.safeParse(raw).success).toBe(false);
  });
});

describe('credential_age evaluate', () => {
  it('passes when every active credential is within its maximum', () => {
    expect(evaluate(facts([cred({ ageDays: 365 }), cred({ kind: 'ssh_host_key', account: null, path: '/etc/ssh/ssh_host_ed25519_key', dateFrom: 'mtime', ageDays: 1095 })]), cfg())).toEqual({
      status: 'pass',
      reasons: [],
    });
  });

  it('fails a credential one day over its maximum, naming kind and account in the subject only', () => {
    const ev = evaluate(facts([cred({ ageDays: 366, lastChanged: '2025-11-21' })]), cfg());
    expect(ev).toEqual({
      status: 'fail',
      reasons: [{ code: 'CHK_FAIL_CREDENTIAL_TOO_OLD', message: 'last changed 2025-11-21, 366 days ago; the maximum for password is 365 days', subject: 'password:alice' }],
    });
  });

  it('uses each kind’s own maximum', () => {
    const hostKey = cred({ kind: 'ssh_host_key', account: null, path: '/etc/ssh/ssh_host_rsa_key', dateFrom: 'mtime', ageDays: 400 });
    expect(codes(facts([hostKey]))).toEqual([]);
    expect(codes(facts([hostKey]), { maxAgeDays: { ssh_host_key: 399 } })).toEqual(['CHK_FAIL_CREDENTIAL_TOO_OLD']);
  });

  it('says for authorized_keys that every entry is at least as old as the file', () => {
    const ak = cred({ kind: 'ssh_authorized_keys', path: '/home/alice/.ssh/authorized_keys', dateFrom: 'mtime', ageDays: 500, lastChanged: '2025-07-10T00:00:00.000Z', keys: [
      { type: 'ssh-ed25519', fingerprint: 'SHA256:a', comment: null, options: false },
      { type: 'ssh-rsa', fingerprint: 'SHA256:b', comment: 'x', options: false },
    ] });
    const [reason] = evaluate(facts([ak]), cfg()).reasons;
    expect(reason?.subject).toBe('ssh_authorized_keys:alice:/home/alice/.ssh/authorized_keys');
    expect(reason?.message).toContain('all 2 of its keys are at least that old');
  });

  it('does not judge inactive credentials or switched-off kinds', () => {
    expect(evaluate(facts([cred({ ageDays: 9000, active: false })]), cfg()).status).toBe('pass');
    expect(evaluate(facts([cred({ ageDays: 9000 })]), cfg({ maxAgeDays: { password: null } })).status).toBe('pass');
  });

  it('is unknown when an active credential has no date, or a date in the future', () => {
    expect(evaluate(facts([cred({ ageDays: null, lastChanged: null, note: 'password aging is disabled' })]), cfg())).toEqual({
      status: 'unknown',
      reasons: [{ code: 'CHK_ERR_UNRESOLVED', message: 'cannot tell how old it is: password aging is disabled', subject: 'password:alice' }],
    });
    expect(codes(facts([cred({ ageDays: -2 })]))).toEqual(['CHK_ERR_UNRESOLVED']);
    // A day of clock skew is tolerated.
    expect(codes(facts([cred({ ageDays: -1 })]))).toEqual([]);
  });

  it('fails an enabled account with an empty password, unless failOnPasswordless is off', () => {
    const f = facts([], { accounts: [account({ name: 'bob', password: 'empty' }), account({ name: 'old', password: 'empty', enabled: false })] });
    expect(evaluate(f, cfg()).reasons).toEqual([
      { code: 'CHK_FAIL_PASSWORDLESS_ACCOUNT', message: 'the password field is empty: the account can log in without a password', subject: 'password:bob' },
    ]);
    expect(evaluate(f, cfg({ failOnPasswordless: false })).status).toBe('pass');
  });

  it('is unknown with the source’s code when a source a judged kind needs is unreadable', () => {
    const denied: Source = { path: '/etc/shadow', kinds: ['password'], state: 'unreadable', code: 'CHK_ERR_PERMISSION' };
    expect(evaluate(facts([], { sources: [denied] }), cfg())).toEqual({
      status: 'unknown',
      reasons: [{ code: 'CHK_ERR_PERMISSION', message: 'cannot read it, so password cannot be judged', subject: '/etc/shadow' }],
    });
    // Passwords are still needed for the passwordless rule when their age is switched off…
    expect(codes(facts([], { sources: [denied] }), { maxAgeDays: { password: null } })).toEqual(['CHK_ERR_PERMISSION']);
    // …and not at all when both are off.
    expect(evaluate(facts([], { sources: [denied] }), cfg({ maxAgeDays: { password: null }, failOnPasswordless: false })).status).toBe('pass');
    const absent: Source = { path: '/home/alice/.ssh', kinds: ['ssh_private_key', 'ssh_authorized_keys'], state: 'absent' };
    expect(evaluate(facts([], { sources: [absent] }), cfg()).status).toBe('pass');
  });

  it('lets a failure dominate an unknown, and report only the failures', () => {
    const f = facts([cred({ ageDays: 400 }), cred({ account: 'bob', ageDays: null })], {
      sources: [{ path: '/root/.ssh', kinds: ['ssh_private_key', 'ssh_authorized_keys'], state: 'unreadable', code: 'CHK_ERR_PERMISSION' }],
    });
    expect(evaluate(f, cfg())).toEqual({ status: 'fail', reasons: [expect.objectContaining({ code: 'CHK_FAIL_CREDENTIAL_TOO_OLD', subject: 'password:alice' })] });
  });

  it('never puts an account name into a reason code or message', () => {
    const f = facts([cred({ account: 'zed', ageDays: 999 }), cred({ account: 'zed', kind: 'ssh_private_key', path: '/home/zed/.ssh/id_rsa', dateFrom: 'mtime', ageDays: null })], {
      accounts: [account({ name: 'zed', password: 'empty' })],
    });
    for (const r of evaluate(f, cfg()).reasons) {
      expect(r.code).not.toContain('zed');
      expect(r.message).not.toContain('zed');
      expect(r.subject).toContain('zed');
    }
  });

  it('re-evaluates stored facts under another policy without a clock (runner.evaluateFacts)', () => {
    const stored = JSON.parse(JSON.stringify(facts([cred({ ageDays: 200 })]))) as unknown;
    expect(evaluateFacts(credentialAge, stored, {}).status).toBe('pass');
    expect(evaluateFacts(credentialAge, stored, { maxAgeDays: { password: 180 } }).status).toBe('fail');
  });
});

describe('credentialSubject', () => {
  it('names kind, account and path', () => {
    expect(credentialSubject(cred({}))).toBe('password:alice');
    expect(credentialSubject(cred({ kind: 'ssh_private_key', path: '/home/alice/.ssh/id_rsa' }))).toBe('ssh_private_key:alice:/home/alice/.ssh/id_rsa');
    expect(credentialSubject(cred({ kind: 'ssh_host_key', account: null, path: '/etc/ssh/ssh_host_rsa_key' }))).toBe('ssh_host_key:/etc/ssh/ssh_host_rsa_key');
  });
});
