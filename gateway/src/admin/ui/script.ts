import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

type TypeScript = typeof import('typescript');

/** Where `npm run build` writes the browser script (browser/tsconfig.json's outFile): beside this module in dist/. */
const BUILT_SCRIPT = fileURLToPath(new URL('./dashboard.js', import.meta.url));
const BROWSER_TSCONFIG = fileURLToPath(new URL('./browser/tsconfig.json', import.meta.url));

/** The built script; a gateway started without it says what to run instead of serving a page that never goes live. */
export function readBuiltScript(path = BUILT_SCRIPT): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new Error(`the dashboard script ${path} cannot be read (${why}): "npm run build" compiles it from gateway/src/admin/ui/browser`);
  }
}

/**
 * Compiles the browser sources in memory, with the same tsconfig and compiler
 * as the build, and fails on any type error as the build does. Only for runs
 * from the TypeScript sources (tests): typescript is a dev dependency.
 */
export function compileBrowserScript(tsconfig = BROWSER_TSCONFIG): string {
  const ts = createRequire(import.meta.url)('typescript') as TypeScript;
  const host: import('typescript').FormatDiagnosticsHost = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => '\n' };
  const fail = (errors: readonly import('typescript').Diagnostic[]) => new Error(`the dashboard script does not compile:\n${ts.formatDiagnostics(errors, host)}`);
  const config = ts.getParsedCommandLineOfConfigFile(tsconfig, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw fail([d]);
    },
  });
  if (!config) throw new Error(`cannot read ${tsconfig}`);
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options });
  const errors = [...config.errors, ...ts.getPreEmitDiagnostics(program)];
  if (errors.length > 0) throw fail(errors);
  let js: string | undefined;
  program.emit(undefined, (name, text) => {
    if (name.endsWith('.js')) js = text;
  });
  if (js === undefined) throw new Error(`${tsconfig} emitted no script`);
  return js;
}

// Run from its .ts source (tsx: the tests), this module compiles the browser sources, so a test never serves a stale build.
const fromSource = import.meta.url.endsWith('.ts');
let script: string | undefined;

/** The dashboard's script, served as /_gateway/ui/dashboard.js: read (or compiled) once, then kept. */
export function dashboardScript(): string {
  script ??= fromSource ? compileBrowserScript() : readBuiltScript();
  return script;
}
