// A small rule set that catches real bugs, not style: promises nobody awaits or
// handles (a rejection that crashes the process or vanishes), promises passed
// where a callback's result is ignored, and code nobody uses. Formatting is left
// to the editor. Type-aware: the rules read the TypeScript program (tsconfig.json).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/**', '.ci/**', 'scripts/**/*.mjs', 'scripts/lib/**', 'prometheus/**', '**/*.d.ts'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // node:test's test() and describe() return promises the runner itself tracks.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      'no-unreachable': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      'no-fallthrough': 'error',
      'no-self-assign': 'error',
      'no-dupe-keys': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // consul-acl/ is the one-shot ACL provisioner (its own workspace and image): the services never
    // import it, so the gateway's and web-service's images do not carry it.
    files: ['shared/**/*.ts', 'gateway/**/*.ts', 'web-service/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['@stack/consul-acl', '@stack/consul-acl/*', '**/consul-acl/**'], message: 'consul-acl is a CLI of its own, not a library' }] }],
    },
  },
);
