import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', 'node_modules/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Only the real HostIO may run commands (and the report's PDF printer, Chromium); tests may spawn the CLIs they test.
      'no-restricted-imports': ['error', { paths: [
        { name: 'node:child_process', message: 'Only checks/host-io.ts runs commands (see CONVENTIONS.md).' },
        { name: 'child_process', message: 'Only checks/host-io.ts runs commands (see CONVENTIONS.md).' },
      ] }],
    },
  },
  {
    // Benchmarks and scripts are plain ESM JavaScript run by Node.
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ['checks/host-io.ts', 'test/**/*.ts', 'collector/demo.ts', 'collector/audit/report.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
