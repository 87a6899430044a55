// Type-aware lint. raft/core must stay pure: no timers, clocks, randomness or I/O.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test-results/**', 'priv/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['raft/core/**/*.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'raft/core is pure: time comes in through tick()' },
        { name: 'setInterval', message: 'raft/core is pure: time comes in through tick()' },
        { name: 'setImmediate', message: 'raft/core is pure' },
        { name: 'queueMicrotask', message: 'raft/core is pure' },
        { name: 'Date', message: 'raft/core is pure: no clock' },
        { name: 'performance', message: 'raft/core is pure: no clock' },
        { name: 'process', message: 'raft/core is pure: no process state' },
        { name: 'fetch', message: 'raft/core is pure: no I/O' },
        { name: 'crypto', message: 'raft/core is pure: randomness is injected' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'raft/core is pure: randomness is injected' },
      ],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(?!\\./)', message: 'raft/core is flat and imports nothing outside raft/core' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
