/**
 * Child node processes that run the real os-layer sources: the TS files of src/native.ts,
 * src/core and src/os are transpiled into a temp tree that links back to the built addon
 * and node_modules (once per tree).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');

/** Transpiles the os layer and what it stands on into `<dir>/js` (kept for later calls). */
export function transpileOsLayer(dir: string): string {
  const out = path.join(dir, 'js');
  if (fs.existsSync(out)) return out;
  const under = (d: string): string[] =>
    (fs.readdirSync(path.join(ROOT, d), { recursive: true }) as string[])
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `${d}/${f}`);
  const files = ['src/native.ts', ...under('src/core'), ...under('src/os')];
  for (const f of files) {
    const js = ts.transpileModule(fs.readFileSync(path.join(ROOT, f), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
    fs.mkdirSync(path.dirname(path.join(out, f)), { recursive: true });
    fs.writeFileSync(path.join(out, f.replace(/\.ts$/, '.js')), js);
  }
  fs.symlinkSync(path.join(ROOT, 'build'), path.join(out, 'build'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(out, 'node_modules'));
  return out;
}

export interface ChildOutcome {
  /** Exit code, or 'alive' if the child still ran after waitMs (it is killed then). */
  code: number | null | 'alive';
  stdout: string;
  stderr: string;
}

/**
 * Runs `node -e script` in the transpiled tree under `dir`; `prefix` (e.g. a prlimit
 * command line) runs node through another program.
 */
export function runOsChild(dir: string, script: string, waitMs: number, prefix: string[] = []): Promise<ChildOutcome> {
  const argv = [...prefix, process.execPath, '-e', script];
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: transpileOsLayer(dir), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ code: 'alive', stdout, stderr });
    }, waitMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
