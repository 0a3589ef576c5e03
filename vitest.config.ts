import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real processes on loopback; two cores, so keep the pool small.
    maxWorkers: 2,
    coverage: {
      provider: 'v8',
      include: ['agent/**/*.ts', 'collector/**/*.ts', 'checks/**/*.ts'],
      reporter: ['text-summary', 'json-summary'],
      thresholds: { lines: 75, functions: 75, branches: 65, statements: 75 },
    },
  },
});
