// `agents list` shows stored text with control characters escaped (#17, low): a host name stored
// before enrollment restricted host names (here written into the store's record directly, as an
// older collector could have accepted it) must not reach the operator's terminal raw: no ESC, no
// OSC 52, no newline that forges a row. A real collector process and the real CLIs.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, COLLECTOR_CLI, runCli, startCollectorProcess, tempDir } from '../helpers/processes.js';

describe('agents list escapes stored host names', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir('agents-escape');
  });
  afterAll(async () => {
    await dir.cleanup();
  });

  it('prints ESC, OSC 52 and newlines escaped, one row per agent', async () => {
    const store = path.join(dir.dir, 'store');
    let collector = await startCollectorProcess(store);
    const token = (await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', store])).stdout.trim();
    const enrolled = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', path.join(dir.dir, 'agent')], { env: { VCM_CONFIG: '' } });
    expect(enrolled.code, enrolled.stderr).toBe(0);
    await collector.stop();
    const record = (await readdir(path.join(store, 'keys'))).find((f) => /^[0-9a-f]{64}\.json$/.test(f))!;
    const file = path.join(store, 'keys', record);
    const doc = JSON.parse(await readFile(file, 'utf8')) as { host: { hostname: string } };
    doc.host.hostname = 'evil\u001b]52;c;aGk=\u0007\nFORGED  acme  row\r';
    await writeFile(file, JSON.stringify(doc));
    collector = await startCollectorProcess(store);
    try {
      const admin = (await runCli(COLLECTOR_CLI, ['admin-token', 'create', '--role', 'admin', '--name', 'ops', '--data-dir', store])).stdout.trim();
      const tokenFile = path.join(dir.dir, 'admin.token');
      await writeFile(tokenFile, admin);
      const list = await runCli(COLLECTOR_CLI, ['agents', 'list', '--collector', collector.url, '--admin-token-file', tokenFile]);
      expect(list.code, list.stderr).toBe(0);
      // eslint-disable-next-line no-control-regex
      expect(list.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
      expect(list.stdout.trimEnd().split('\n')).toHaveLength(2);
      expect(list.stdout).toContain('evil\\u001b]52;c;aGk=\\u0007\\u000aFORGED  acme  row\\u000d');
    } finally {
      await collector.stop();
    }
  }, 60_000);
});
