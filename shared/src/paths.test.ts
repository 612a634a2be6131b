import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasPathTraversal } from './paths.js';

const cases: Array<[string, boolean]> = [
  ['/', false],
  ['/a/b.c/d', false],
  ['/a/...', false],
  ['/a%2Fb', false],
  ['/..', true],
  ['/a/../b', true],
  ['/a/./b', true],
  ['/a/%2e%2e/b', true],
  ['/a/.%2E/b', true],
  ['/a/..%2fb', true],
  ['/a\\b', true],
  ['/a%5Cb', true],
  ['..', true],
  ['.', true],
  ['/a/.', true],
  ['/a%2F%2E', true],
  ['/a%2f..%2fb', true],
  ['/a/.b', false],
  ['/a/b.', false],
  ['/a/..b', false],
  ['/a/%2e%2e%2e', false],
  ['/a%2e%2e', false],
  ['/./', true],
];
for (const [path, expected] of cases) {
  test(`hasPathTraversal(${JSON.stringify(path)}) === ${expected}`, () => assert.equal(hasPathTraversal(path), expected));
}
