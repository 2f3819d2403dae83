// ESLint for the TypeScript tree (`npm run lint`, run by scripts/test.sh before vitest):
// typescript-eslint's recommended rules plus the type-aware ones that catch what tests
// rarely do (a promise nobody awaits, a promise where a callback's return is ignored).
// Formatting is prettier's business (.prettierrc.json, `npm run format:check`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'native/', 'deploy/', 'bench/results/', 'api/', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts'],
    languageOptions: {
      parserOptions: { project: ['./tsconfig.check.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Empty callbacks and no-op loggers are deliberate here.
      '@typescript-eslint/no-empty-function': 'off',
      // A timer declared before the closure that clears it is assigned once, later.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(
        ['console', 'process', '__dirname', 'require', 'module', 'Buffer', 'URL', 'setTimeout', 'clearTimeout'].map(
          (g) => [g, 'readonly'],
        ),
      ),
    },
  },
  // Plain CommonJS scripts (fixture recorders) load modules with require().
  { files: ['**/*.js'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
);
