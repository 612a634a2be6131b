// A small rule set that catches real bugs, not style: promises nobody awaits or
// handles (a rejection that crashes the process or vanishes), promises passed
// where a callback's result is ignored, and code nobody uses. Formatting is left
// to the editor. Type-aware: the rules read the TypeScript program (tsconfig.json;
// the dashboard's browser code has its own, with DOM types and browser globals).
import globals from 'globals';
import tseslint from 'typescript-eslint';

const BROWSER = 'gateway/src/admin/ui/browser/**/*.ts';
const MARKUP = 'data from Consul must reach the page as text (textContent, built with h()), never as markup';

const rules = {
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
};

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/**', '.ci/**', 'scripts/**/*.mjs', 'scripts/lib/**', 'prometheus/**', '**/*.d.ts'] },
  {
    files: ['**/*.ts'],
    ignores: [BROWSER],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules,
  },
  {
    // The dashboard's script: the same rules, and none of the ways to turn data into markup or code.
    files: [BROWSER],
    languageOptions: {
      // Scripts, not modules: tsc joins them into one classic script (see its tsconfig.json).
      sourceType: 'script',
      globals: globals.browser,
      parser: tseslint.parser,
      parserOptions: { project: './gateway/src/admin/ui/browser/tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      ...rules,
      // The files' one global, the Dashboard namespace, is used across files; what each declares inside it is still checked.
      '@typescript-eslint/no-unused-vars': ['error', { vars: 'local', argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-restricted-properties': [
        'error',
        { property: 'innerHTML', message: MARKUP },
        { property: 'outerHTML', message: MARKUP },
        { property: 'insertAdjacentHTML', message: MARKUP },
        { object: 'document', property: 'write', message: MARKUP },
        { object: 'document', property: 'writeln', message: MARKUP },
      ],
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
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
