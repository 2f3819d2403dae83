#!/usr/bin/env node
// The figures of docs/architecture.md ("before/after"), measured on a source tree:
//   node scripts/arch-figures.mjs [repo-dir]     (default: this repository; needs `npm run build:ts` for exports)
// Prints one JSON object: files and lines per src/ folder, the ten largest functions,
// runtime exports per package entry point, Error subclasses, error-code casts, type
// assertions and lines over 120 characters.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const repo = path.resolve(process.argv[2] ?? path.join(path.dirname(new URL(import.meta.url).pathname), '..'));
const require = createRequire(path.join(repo, 'package.json'));
const ts = createRequire(import.meta.url)('typescript');

function walk(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

const src = path.join(repo, 'src');
const files = walk(src);
const perFolder = {};
let totalLines = 0;
let longLines = 0;
const functions = [];
const errorClasses = new Map(); // name -> base name
let assertions = 0;
let codeCasts = 0;
let objectAssignErrors = 0;

for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  const rel = path.relative(src, file);
  const folder = rel.includes(path.sep) ? rel.split(path.sep)[0] : '(root)';
  const lines = text.split('\n');
  const n = lines.length - (text.endsWith('\n') ? 1 : 0);
  perFolder[folder] ??= { files: 0, lines: 0 };
  perFolder[folder].files++;
  perFolder[folder].lines += n;
  totalLines += n;
  longLines += lines.filter((l) => l.length > 120).length;
  // `(x as { code?: ... })` and friends: reading an error code through a cast.
  codeCasts += (text.match(/as\s+(\w+\s*&\s*)?\{\s*code\??\s*:/g) ?? []).length;
  codeCasts += (text.match(/as NodeJS\.ErrnoException\)\.code/g) ?? []).length;
  objectAssignErrors += (text.match(/Object\.assign\(new (\w*)Error\(/g) ?? []).length;

  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const lineOf = (pos) => sf.getLineAndCharacterOfPosition(pos).line;
  const visit = (node, owner) => {
    if (ts.isAsExpression(node) && !(ts.isTypeReferenceNode(node.type) && node.type.typeName.getText(sf) === 'const'))
      assertions++;
    if (ts.isClassDeclaration(node) && node.name && node.heritageClauses) {
      for (const h of node.heritageClauses) {
        if (h.token !== ts.SyntaxKind.ExtendsKeyword) continue;
        const base = h.types[0].expression.getText(sf);
        errorClasses.set(`${rel}:${node.name.text}`, { name: node.name.text, base });
      }
    }
    let name;
    if (ts.isFunctionDeclaration(node) && node.name) name = node.name.text;
    else if ((ts.isMethodDeclaration(node) || ts.isGetAccessor(node)) && node.name)
      name = `${owner ?? '?'}.${node.name.getText(sf)}`;
    else if (ts.isConstructorDeclaration(node)) name = `${owner ?? '?'}.constructor`;
    else if (
      ts.isVariableDeclaration(node) &&
      node.initializer &&
      (ts.isArrowFunction(node.initializer) || ts.isFunctionExpression(node.initializer))
    ) {
      name = node.name.getText(sf);
    }
    if (name && (node.body || node.initializer?.body)) {
      const body = node.body ?? node.initializer.body;
      functions.push({ name, file: rel, lines: lineOf(body.end) - lineOf(node.getStart(sf)) + 1 });
    }
    const nextOwner = ts.isClassDeclaration(node) && node.name ? node.name.text : owner;
    ts.forEachChild(node, (c) => visit(c, nextOwner));
  };
  visit(sf, undefined);
}

// Error classes: `extends Error` or extends (transitively) another error class found here.
const byName = new Map([...errorClasses.values()].map((c) => [c.name, c]));
const isError = (name, seen = new Set()) => {
  if (name === 'Error' || name === 'TypeError' || name === 'RangeError') return true;
  const c = byName.get(name);
  if (!c || seen.has(name)) return false;
  seen.add(name);
  return isError(c.base, seen);
};
const errors = [...errorClasses.values()]
  .filter((c) => isError(c.base))
  .map((c) => c.name)
  .sort();

// Runtime exports of each entry point of the built package (dist/).
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
const entries = {};
const entryMap = pkg.exports
  ? Object.fromEntries(
      Object.entries(pkg.exports).map(([k, v]) => [k, typeof v === 'string' ? v : (v.require ?? v.default)]),
    )
  : { '.': pkg.main };
for (const [k, rel] of Object.entries(entryMap)) {
  if (!/\.js$/.test(rel)) continue;
  try {
    const mod = require(path.join(repo, rel));
    const keys = Object.keys(mod);
    entries[k] = keys.length;
    for (const ns of ['netlink', 'kuryr'])
      if (mod[ns] && typeof mod[ns] === 'object') entries[`${k} → ${ns}.*`] = Object.keys(mod[ns]).length;
  } catch (e) {
    entries[k] = `not built (${e.code ?? e.message})`;
  }
}

functions.sort((a, b) => b.lines - a.lines);
console.log(
  JSON.stringify(
    {
      repo,
      srcFiles: files.length,
      srcLines: totalLines,
      perFolder,
      largestFunctions: functions.slice(0, 10).map((f) => `${f.lines} ${f.name} (${f.file})`),
      largestLibraryFunctions: functions
        .filter((f) => !/^(bench|sandbox)\//.test(f.file))
        .slice(0, 5)
        .map((f) => `${f.lines} ${f.name} (${f.file})`),
      functionsOver80Lines: functions.filter((f) => f.lines > 80).length,
      libraryFunctionsOver80Lines: functions.filter((f) => f.lines > 80 && !/^(bench|sandbox)\//.test(f.file)).length,
      runtimeExports: entries,
      errorClasses: errors.length,
      errorClassNames: errors,
      errorCodeCasts: codeCasts,
      objectAssignErrors,
      typeAssertions: assertions,
      linesOver120: longLines,
    },
    null,
    2,
  ),
);
