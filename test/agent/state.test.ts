// The state directory's JSON files: one that is damaged stops the agent with AGT_ERR_STATE naming
// the file, never a bare parse error (which a service manager would restart forever).
import { writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StateDir } from '../../agent/state.js';
import { tempDir } from '../helpers/processes.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let state: StateDir;

beforeEach(async () => {
  dir = await tempDir('state');
  state = new StateDir(dir.dir);
});
afterEach(async () => {
  await dir.cleanup();
});

describe('state files', () => {
  it('absent files read as nothing', async () => {
    expect(await state.identity()).toBeNull();
    expect(await state.pendingRotation()).toBeNull();
    expect(await state.policy()).toBeNull();
    expect(await state.chain()).toEqual({ seq: 0, head: null });
  });

  const files = [
    ['rotation.json', (s: StateDir) => s.pendingRotation(), (s: StateDir) => s.rotationFile],
    ['identity.json', (s: StateDir) => s.identity(), (s: StateDir) => s.identityFile],
    ['chain.json', (s: StateDir) => s.chain(), (s: StateDir) => s.chainFile],
    ['policy.json', (s: StateDir) => s.policy(), (s: StateDir) => s.policyFile],
  ] as const;

  it.each(files)('%s that is not JSON is AGT_ERR_STATE, naming the file', async (_name, read, file) => {
    await writeFile(file(state), '{"generation": 2, "keyId": "ab');
    await expect(read(state)).rejects.toMatchObject({ name: 'AgentError', code: 'AGT_ERR_STATE', message: expect.stringContaining(`${file(state)} is damaged`) });
  });

  it.each(files)('%s of the wrong shape is AGT_ERR_STATE, naming the file', async (_name, read, file) => {
    await writeFile(file(state), '{"unexpected": true}\n');
    await expect(read(state)).rejects.toMatchObject({ code: 'AGT_ERR_STATE', message: expect.stringContaining(`${file(state)} is damaged`) });
  });
});
