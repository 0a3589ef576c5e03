// `serve --body-limit`: sso_coverage facts of a large org outgrow the default 1 MiB, so the
// operator can raise the limit; below it, an oversized body is still refused before parsing.
import { describe, expect, it } from 'vitest';
import { COLLECTOR_CLI, runCli, startCollectorProcess, tempDir } from '../helpers/processes.js';

async function post(url: string, bytes: number): Promise<{ status: number; code: string | undefined }> {
  const res = await fetch(`${url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"pad":"${'x'.repeat(bytes - 10)}"}` });
  const body = (await res.json()) as { error?: { code?: string } };
  return { status: res.status, code: body.error?.code };
}

describe('collector body limit', () => {
  it('is 1 MiB by default, and --body-limit raises it: the same 1.5 MiB body is too large, then read', async () => {
    const dir = await tempDir('vcm-body-');
    try {
      const dflt = await startCollectorProcess(`${dir.dir}/a`);
      try {
        expect(await post(dflt.url, 1.5 * 1024 * 1024)).toEqual({ status: 413, code: 'COL_ERR_TOO_LARGE' });
      } finally {
        await dflt.stop();
      }
      const raised = await startCollectorProcess(`${dir.dir}/b`, { args: ['--body-limit', '4MiB'] });
      try {
        // Past the size check: refused for what it is (not an envelope), not for its size.
        expect(await post(raised.url, 1.5 * 1024 * 1024)).toEqual({ status: 400, code: 'COL_ERR_MALFORMED' });
        expect(await post(raised.url, 5 * 1024 * 1024)).toEqual({ status: 413, code: 'COL_ERR_TOO_LARGE' });
      } finally {
        await raised.stop();
      }
    } finally {
      await dir.cleanup();
    }
  });

  it('refuses a size it cannot read, before starting', async () => {
    for (const bad of ['4GB', '12', '100MiB']) {
      const r = await runCli(COLLECTOR_CLI, ['serve', '--body-limit', bad, '--listen', '127.0.0.1:0']);
      expect(r.code, bad).not.toBe(0);
      expect(r.stderr).toMatch(/--body-limit/);
    }
  });
});
