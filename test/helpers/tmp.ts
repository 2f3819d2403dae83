/**
 * A fresh temporary root per test file (created in beforeAll, removed in afterAll), and a
 * new empty directory under it for every test that asks.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export function useTmpRoot(prefix: string): { root(): string; freshDir(): string } {
  let root: string | undefined;
  let seq = 0;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  afterAll(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });
  const get = (): string => {
    if (!root) throw new Error('useTmpRoot: use root()/freshDir() inside tests');
    return root;
  };
  return {
    root: get,
    freshDir: () => {
      const d = path.join(get(), `d${++seq}`);
      fs.mkdirSync(d);
      return d;
    },
  };
}
