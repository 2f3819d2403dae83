/**
 * The layer rules of docs/architecture.md, enforced: every import in src/ goes down (or
 * sideways inside its own layer), never up, and no module graph has a cycle, in src/ or
 * in the test helpers. A failure names the offending import with its file and line.
 *
 * Imports are read from the TypeScript AST (static imports and re-exports, `import()`
 * types and calls, `require()`), so type-only imports count too: a type reaching up a
 * layer is a dependency all the same. The one sanctioned upward edge is lazy: the CLI
 * loads the development tools (src/bench) inside a function, so that the published
 * package, which leaves them out, still starts (src/cli/tools.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(__dirname, '../..');
const SRC = path.join(REPO, 'src');

/** Layer of each src/ entry, bottom (0) to top. Entries sharing a rank are siblings that must not import each other. */
export const LAYERS: readonly { layer: string; rank: number; paths: readonly string[] }[] = [
  { layer: 'native', rank: 0, paths: ['native.ts'] },
  { layer: 'core', rank: 1, paths: ['core'] },
  { layer: 'os', rank: 2, paths: ['os'] },
  { layer: 'ovsdb', rank: 3, paths: ['ovsdb'] },
  { layer: 'vswitch', rank: 4, paths: ['vswitch'] },
  { layer: 'vif', rank: 5, paths: ['vif'] },
  { layer: 'binding', rank: 6, paths: ['binding'] },
  { layer: 'cni', rank: 7, paths: ['cni'] },
  { layer: 'agent', rank: 8, paths: ['agent'] },
  { layer: 'daemon', rank: 9, paths: ['daemon'] },
  { layer: 'kuryr', rank: 9, paths: ['kuryr'] },
  { layer: 'cli', rank: 10, paths: ['cli'] },
  { layer: 'api', rank: 10, paths: ['index.ts'] },
  { layer: 'sandbox', rank: 11, paths: ['sandbox'] },
  { layer: 'bench', rank: 12, paths: ['bench'] },
];

/** Upward edges allowed when lazy (inside a function): from layer → to layer. */
const LAZY_UP: readonly [string, string][] = [['cli', 'bench']];

interface Edge {
  from: string;
  to: string;
  line: number;
  /** Inside a function body: loaded when called, not when the module loads. */
  lazy: boolean;
}

function walk(dir: string, filter: (f: string) => boolean): string[] {
  const out: string[] = [];
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, filter));
    else if (filter(p)) out.push(p);
  }
  return out.sort();
}

function resolve(fromFile: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined; // node: builtins and packages
  const base = path.resolve(path.dirname(fromFile), spec);
  for (const c of [base, `${base}.ts`, path.join(base, 'index.ts')]) {
    if (c.endsWith('.ts') && fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  }
  return undefined; // .json and other non-TS files
}

/** Every relative import of a file, with whether it is lazy. */
export function importsOf(file: string): Edge[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const edges: Edge[] = [];
  const add = (spec: ts.Node, lazy: boolean) => {
    if (!ts.isStringLiteralLike(spec)) return;
    const to = resolve(file, spec.text);
    if (to) edges.push({ from: file, to, line: sf.getLineAndCharacterOfPosition(spec.getStart(sf)).line + 1, lazy });
  };
  const visit = (node: ts.Node, inFunction: boolean) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier)
      add(node.moduleSpecifier, inFunction);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference))
      add(node.moduleReference.expression, inFunction);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal, inFunction);
    else if (ts.isCallExpression(node) && node.arguments.length === 1) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require'))
        add(node.arguments[0]!, inFunction);
    }
    const fn =
      ts.isFunctionLike(node) &&
      node.kind !== ts.SyntaxKind.FunctionType &&
      node.kind !== ts.SyntaxKind.ConstructorType;
    ts.forEachChild(node, (c) => visit(c, inFunction || fn));
  };
  visit(sf, false);
  return edges;
}

/** The layer of a src/ file. */
export function layerOf(file: string): { layer: string; rank: number } {
  const rel = path.relative(SRC, file).split(path.sep);
  const hit = LAYERS.find((l) => l.paths.includes(rel[0]!));
  if (!hit) throw new Error(`src/${rel.join('/')} is in no layer: add its folder to LAYERS and docs/architecture.md`);
  return hit;
}

/** Cycles of a module graph (each strongly connected component with more than one file, or a self-import). */
export function cycles(edges: readonly Edge[]): string[][] {
  const graph = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!graph.has(e.from)) graph.set(e.from, new Set());
    if (!graph.has(e.to)) graph.set(e.to, new Set());
    graph.get(e.from)!.add(e.to);
  }
  // Tarjan's strongly connected components.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v)!) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || graph.get(v)!.has(v)) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) strong(v);
  return out;
}

const rel = (f: string) => path.relative(REPO, f);
const srcFiles = walk(SRC, (f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
const srcEdges = srcFiles.flatMap(importsOf);

describe('architecture: one-way layers (docs/architecture.md)', () => {
  it('every src/ file is in a layer', () => {
    for (const f of srcFiles) expect(() => layerOf(f), rel(f)).not.toThrow();
  });

  it('no import goes up a layer or across to a sibling', () => {
    const bad: string[] = [];
    for (const e of srcEdges) {
      const a = layerOf(e.from);
      const b = layerOf(e.to);
      if (a.layer === b.layer || b.rank < a.rank) continue;
      if (e.lazy && LAZY_UP.some(([x, y]) => x === a.layer && y === b.layer)) continue;
      bad.push(
        `${rel(e.from)}:${e.line} (${a.layer}) imports ${rel(e.to)} (${b.layer})${b.rank === a.rank ? ', a sibling layer' : ', a layer above'}`,
      );
    }
    expect(bad).toEqual([]);
  });

  it('the development tools are reached only lazily, from the CLI', () => {
    const tools = new Set(['bench', 'sandbox']);
    const bad = srcEdges
      .filter((e) => tools.has(layerOf(e.to).layer) && !tools.has(layerOf(e.from).layer))
      .filter((e) => !e.lazy || layerOf(e.from).layer !== 'cli')
      .map((e) => `${rel(e.from)}:${e.line} imports ${rel(e.to)}`);
    expect(bad).toEqual([]);
  });

  it('src/ has no import cycle', () => {
    expect(cycles(srcEdges).map((c) => c.map(rel).join(' → '))).toEqual([]);
  });

  it('the test helpers (and what they import) have no import cycle', () => {
    const helpers = walk(path.join(REPO, 'test'), (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    expect(helpers.length).toBeGreaterThan(0);
    const edges = [...srcEdges, ...helpers.flatMap(importsOf)];
    expect(cycles(edges).map((c) => c.map(rel).join(' → '))).toEqual([]);
  });

  it('src/ovsdb is schema-agnostic: no string in its code names an Open_vSwitch table or column', () => {
    const OVS_NAMES = new Set([
      'Open_vSwitch',
      'Bridge',
      'Port',
      'Interface',
      'next_cfg',
      'cur_cfg',
      'ofport',
      'external_ids',
    ]);
    const bad: string[] = [];
    for (const f of srcFiles.filter((x) => layerOf(x).layer === 'ovsdb')) {
      const sf = ts.createSourceFile(f, fs.readFileSync(f, 'utf8'), ts.ScriptTarget.ES2022, true);
      const visit = (n: ts.Node) => {
        if (ts.isStringLiteralLike(n) && OVS_NAMES.has(n.text))
          bad.push(`${rel(f)}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1} '${n.text}'`);
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
    expect(bad).toEqual([]);
  });

  it('the checker itself sees what it must (a cycle, an upward import, a lazy require)', () => {
    const a = path.join(SRC, 'core', 'a.ts');
    const b = path.join(SRC, 'core', 'b.ts');
    expect(
      cycles([
        { from: a, to: b, line: 1, lazy: false },
        { from: b, to: a, line: 1, lazy: false },
      ]),
    ).toHaveLength(1);
    const cli = importsOf(path.join(SRC, 'cli', 'commands.ts'));
    expect(cli.some((e) => e.lazy && layerOf(e.to).layer === 'bench')).toBe(true);
    expect(layerOf(path.join(SRC, 'vif', 'x.ts')).rank).toBeGreaterThan(layerOf(path.join(SRC, 'core', 'x.ts')).rank);
  });
});
