/// <reference path="./browser/wire.d.ts" />
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DashboardView } from '../page.js';
import type { GatewayEvent } from '../events.js';
import type { LiveStatsJSON } from '../../observe/live-stats.js';
import type { routesView } from '../../routes/explain.js';
import { compileBrowserScript, dashboardScript, readBuiltScript } from './script.js';

// Checked when npm run typecheck compiles this file: the gateway's answers still fit what the
// browser code reads (browser/wire.d.ts), so renaming a field the page uses fails the typecheck.
type Fits<T extends U, U> = T extends U ? true : never;
const _fits: [
  Fits<DashboardView, Dashboard.SnapshotJSON>,
  Fits<LiveStatsJSON, Dashboard.StatsJSON>,
  Fits<ReturnType<typeof routesView>, Dashboard.RoutesJSON>,
  Fits<GatewayEvent, Dashboard.EventJSON>,
] = [true, true, true, true];

describe('the dashboard script', () => {
  test('a build without it fails at start, naming the file and the command that makes it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-js-'));
    try {
      const missing = join(dir, 'dashboard.js');
      assert.throws(() => readBuiltScript(missing), (err: Error) => {
        assert.ok(err.message.includes(missing), err.message);
        assert.match(err.message, /ENOENT.*"npm run build" compiles it from gateway\/src\/admin\/ui\/browser/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('run from source, it is compiled from the browser sources: one classic script that starts the page', () => {
    const js = dashboardScript();
    assert.equal(dashboardScript(), js, 'kept, not compiled again');
    assert.match(js, /^"use strict";/);
    assert.doesNotMatch(js, /^\s*(import|export)\s/m);
    assert.match(js, /document\.readyState === 'loading'/);
  });

  test('a type error in the browser sources fails the compile, with the compiler message', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-ts-'));
    try {
      writeFileSync(join(dir, 'bad.ts'), "namespace Dashboard {\n  export const n: number = document.title;\n}\n");
      const options = { target: 'ES2017', lib: ['ES2017', 'DOM'], module: 'none', strict: true, types: [], outFile: 'out.js' };
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files: ['bad.ts'] }));
      assert.throws(() => compileBrowserScript(join(dir, 'tsconfig.json')), /does not compile:[\s\S]*bad\.ts.*TS2322/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
