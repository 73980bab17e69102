// Layering as a test (after go-containerregistry's pkg/registry/depcheck_test.go): reads the import
// graph of src/ with fs and regexes only (no compiler, no servers) and fails on an import against
//   cli → gateway → {auth, registry/api} → registry/core → registry/storage
// or on an import cycle. It checks src/ only: tests may import anything.
//
// The rules, in the order they are applied to an import of file T (layer B) by file F (layer A):
//   1. A file's layer is the longest directory in LAYERS that holds it; a directory under src/ that
//      is in no row fails the test, so new code is placed deliberately.
//   2. Imports inside one layer are free (cycles are still reported); nothing imports cli.
//   3. EXCEPTIONS (by file or layer) are allowed before any other rule.
//   4. A layer with `onlyFor` may be imported only by those layers (config: the process-level
//      layers; registry/core, storage, notify, cache and auth take their own option types).
//   5. A layer's `never` list is forbidden even when the rank would allow it (registry/api reaches
//      storage, cache and notify only through the core's Repository and the composition root).
//   6. Otherwise a layer imports only lower ranks. Layers of the same rank are siblings and do not
//      import each other, except those listed in `sideways`, and leaves (rank 0), which may.
// Decisions taken here: at rank 5 the operations side sits beside the gateway; the gateway may
// start it (gateway/server.ts starts the debug listener and the health checks) and debug may read
// health and metrics (it serves them), but health and metrics import neither each other nor the
// gateway. config has rank 1: it imports only leaves and, as an exception, storage's factory (to
// check driver names). Type-only imports count: they couple the layers as much as value imports.
// Externals are free, except EXTERNALS (STYLE §1: core never imports node:http).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

interface Layer { layer: string; rank: number; onlyFor?: string[]; never?: string[]; sideways?: string[] }

const LAYERS: Layer[] = [
  // layer (= src/<layer>/)  rank
  { layer: 'cli',              rank: 6 },
  { layer: 'gateway',          rank: 5, sideways: ['debug', 'health', 'metrics'] },
  { layer: 'debug',            rank: 5, sideways: ['health', 'metrics'] },
  { layer: 'health',           rank: 5 },
  { layer: 'metrics',          rank: 5 },
  { layer: 'auth',             rank: 4 },
  { layer: 'registry/api',     rank: 4, never: ['registry/storage', 'registry/cache', 'registry/notify'] },
  { layer: 'registry/notify',  rank: 3 },                 // decorators of the core's Repository
  { layer: 'registry/cache',   rank: 3 },
  { layer: 'registry/core',    rank: 2 },
  { layer: 'registry/storage', rank: 1 },
  { layer: 'config',           rank: 1, onlyFor: ['cli', 'gateway', 'debug', 'health', 'metrics'] },
  { layer: 'log',              rank: 0 },                 // leaves: anyone may import them
  { layer: 'util',             rank: 0 },
  { layer: 'http',             rank: 0 },
];

// `from` and `to` name layers, or single files by their path (src/….ts).
const EXCEPTIONS = [
  { from: 'src/registry/api/app.ts', to: ['registry/storage', 'registry/cache', 'registry/notify', 'config'],
    why: 'the composition root wires them' },
  { from: 'config', to: ['src/registry/storage/factory.ts'], why: 'config checks storage driver names' },
];

// External modules a layer must not import (node builtins as node:x, packages as npm:x).
const EXTERNALS: Record<string, string[]> = {
  'registry/core': ['node:http', 'node:https', 'node:http2'],
};

// ── the checker: a pure function over { file → imports } ─────────────────────────────────────────
// Keys are repo-relative paths (src/….ts). Imports are repo-relative paths for relative specifiers
// (whether or not the file exists) and node:x or npm:x for external modules.
type ImportGraph = Record<string, string[]>;
interface LayeringReport { unplaced: string[]; violations: string[]; cycles: string[] }

function layerOf(file: string): Layer | undefined {
  let best: Layer | undefined;
  for (const l of LAYERS) {
    if (file.startsWith(`src/${l.layer}/`) && (!best || l.layer.length > best.layer.length)) best = l;
  }
  return best;
}

// The outermost directory holding `file` that no row covers: src/x, or src/registry/x.
function unplacedDir(file: string): string {
  const parts = file.split('/');
  for (let k = 2; k < parts.length; k++) {
    const dir = parts.slice(0, k).join('/');
    if (!LAYERS.some((l) => `src/${l.layer}/`.startsWith(`${dir}/`))) return dir;
  }
  return file;
}

const matches = (name: string, file: string, layer: Layer) => name === file || name === layer.layer;

function edgeProblem(from: string, a: Layer, to: string, b: Layer): string | undefined {
  if (a === b) return undefined;
  if (b.layer === 'cli') return `nothing may import cli`;
  if (EXCEPTIONS.some((e) => matches(e.from, from, a) && e.to.some((t) => matches(t, to, b)))) return undefined;
  const bad = `${a.layer} may not import ${b.layer}`;
  if (b.onlyFor && !b.onlyFor.includes(a.layer)) return `${bad} (only ${b.onlyFor.join(', ')} may)`;
  if (a.never?.includes(b.layer)) return `${bad} (it goes through registry/core's Repository)`;
  if (b.rank > a.rank) return `${bad} (rank ${a.rank} below rank ${b.rank})`;
  if (b.rank === a.rank && a.rank > 0 && !a.sideways?.includes(b.layer)) return `${bad} (siblings at rank ${a.rank})`;
  return undefined;
}

const isExternal = (spec: string) => spec.startsWith('node:') || spec.startsWith('npm:');

function checkLayering(graph: ImportGraph): LayeringReport {
  const unplaced = new Set<string>();
  const violations: string[] = [];
  for (const [from, imports] of Object.entries(graph)) {
    const a = layerOf(from);
    if (!a) { unplaced.add(`${unplacedDir(from)} is not in the layering table`); continue; }
    for (const to of imports) {
      if (isExternal(to)) {
        const mod = to.replace(/^npm:/, '');
        if (EXTERNALS[a.layer]?.includes(mod)) violations.push(`${from} imports ${mod}: ${a.layer} may not import ${mod}`);
        continue;
      }
      if (!to.startsWith('src/')) { violations.push(`${from} imports ${to}: src/ may not import outside src/`); continue; }
      if (!(to in graph)) { violations.push(`${from} imports ${to}: no such file under src/`); continue; }
      const b = layerOf(to);
      if (!b) continue;                                  // reported once, as unplaced
      const why = edgeProblem(from, a, to, b);
      if (why) violations.push(`${from} imports ${to}: ${why}`);
    }
  }
  return { unplaced: [...unplaced].sort(), violations: violations.sort(), cycles: findCycles(graph) };
}

// One shortest cycle per strongly connected set of files (Tarjan), from its first file by name.
function findCycles(graph: ImportGraph): string[] {
  const succ = (f: string) => [...new Set(graph[f] ?? [])].filter((t) => t in graph).sort();
  const index = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>();
  const stack: string[] = [], sccs: string[][] = [];
  let next = 0;
  const visit = (v: string) => {                         // recursion depth ≤ number of files
    index.set(v, next); low.set(v, next++); stack.push(v); onStack.add(v);
    for (const w of succ(v)) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1 || succ(v).includes(v)) sccs.push(scc.sort());
    }
  };
  for (const f of Object.keys(graph).sort()) if (!index.has(f)) visit(f);

  return sccs.map((scc) => {
    const inScc = new Set(scc), start = scc[0];
    const prev = new Map<string, string>();
    const queue = [start];
    let last: string | undefined;
    while (queue.length && !last) {                      // BFS back to start, inside the set
      const v = queue.shift()!;
      for (const w of succ(v).filter((x) => inScc.has(x))) {
        if (w === start) { last = v; break; }
        if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
      }
    }
    const path = [start];
    for (let v = last!; v !== start; v = prev.get(v)!) path.splice(1, 0, v);
    const more = scc.length > path.length ? ` (one of ${scc.length} files importing each other: ${scc.join(', ')})` : '';
    return `${[...path, start].join(' → ')}${more}`;
  }).sort();
}

// ── reading src/ ─────────────────────────────────────────────────────────────────────────────────

// Blanks comments (keeping newlines) so commented-out imports do not count; strings, template
// literals and regex literals are skipped whole so a // or /* inside them is not a comment.
function stripComments(src: string): string {
  let out = '', i = 0, prev = '';
  const code = (untilBrace: boolean): void => {
    let depth = 0;
    while (i < src.length) {
      const c = src[i], n = src[i + 1];
      if (c === '/' && n === '/') { while (i < src.length && src[i] !== '\n') { out += ' '; i++; } continue; }
      if (c === '/' && n === '*') {
        const end = src.indexOf('*/', i + 2) < 0 ? src.length : src.indexOf('*/', i + 2) + 2;
        out += src.slice(i, end).replace(/[^\n]/g, ' '); i = end; continue;
      }
      if (c === '`') { template(); prev = '`'; continue; }
      if (c === "'" || c === '"' || (c === '/' && !/[\w$)\]]/.test(prev))) { quoted(c); prev = c; continue; }
      if (untilBrace && c === '{') depth++;
      if (untilBrace && c === '}' && depth-- === 0) return;
      out += c; i++;
      if (!/\s/.test(c)) prev = c;
    }
  };
  const quoted = (q: string): void => {                  // '…', "…" or /…/ (with [classes])
    out += src[i++];
    let inClass = false;
    while (i < src.length && src[i] !== '\n') {
      const c = src[i];
      out += c; i++;
      if (c === '\\') { out += src[i] ?? ''; i++; continue; }
      if (q === '/' && c === '[') inClass = true;
      else if (q === '/' && c === ']') inClass = false;
      else if (c === q && !inClass) return;
    }
  };
  const template = (): void => {
    out += src[i++];
    while (i < src.length) {
      const c = src[i];
      if (c === '\\') { out += src.slice(i, i + 2); i += 2; continue; }
      if (c === '`') { out += c; i++; return; }
      if (c === '$' && src[i + 1] === '{') { out += '${'; i += 2; code(true); out += '}'; i++; continue; }
      out += c; i++;
    }
  };
  code(false);
  return out;
}

// import … from '…', import type … from '…', export … from '…', import '…', import('…'), typeof import('…').
// Static forms must start a statement (a line, or after ; { }), so '--import', 'tsx' is no import.
const STATIC_RE = /(?:^|[;{}])\s*(?:import|export)\s+(?:type\s+)?[^'"`;()=]*?\bfrom\s*(['"])([^'"\n]+)\1/gm;
const BARE_RE = /(?:^|[;{}])\s*import\s*(['"])([^'"\n]+)\1/gm;
const DYNAMIC_RE = /(?<![\w$.])import\s*\(\s*(['"`])([^'"`\n$]+)\1\s*[,)]/g;

function importSpecifiers(source: string): string[] {
  const text = stripComments(source);
  const specs: string[] = [];
  for (const re of [STATIC_RE, BARE_RE, DYNAMIC_RE]) for (const m of text.matchAll(re)) specs.push(m[2]);
  return specs;
}

// './x.js' from src/a/b.ts → src/a/x.ts; 'pino/file' → npm:pino/file; 'node:fs' stays.
function resolveSpecifier(fromFile: string, spec: string): string {
  if (!spec.startsWith('.')) return spec.startsWith('node:') ? spec : `npm:${spec}`;
  const p = posix.normalize(posix.join(posix.dirname(fromFile), spec));
  if (/\.[cm]?js$/.test(p)) return p.replace(/(\.[cm]?)js$/, '$1ts');
  return /\.[cm]?ts$|\.json$/.test(p) ? p : `${p}.ts`;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function readSrcGraph(): ImportGraph {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.[cm]?ts$/.test(e.name) && !e.name.endsWith('.d.ts')) {
        files.push(relative(ROOT, p).split(sep).join('/'));
      }
    }
  };
  walk(join(ROOT, 'src'));
  const graph: ImportGraph = {};
  for (const f of files.sort()) {                      // NodeNext ESM: no directory (index) imports
    graph[f] = [...new Set(importSpecifiers(readFileSync(join(ROOT, f), 'utf8')).map((s) => resolveSpecifier(f, s)))];
  }
  return graph;
}

// ── the tests ────────────────────────────────────────────────────────────────────────────────────

let memo: LayeringReport | undefined;
const report = () => (memo ??= checkLayering(readSrcGraph()));
const listing = (title: string, items: string[]) => `${items.length} ${title}:\n  ${items.join('\n  ')}`;

test('every directory under src/ is in the layering table', () => {
  const { unplaced } = report();
  if (unplaced.length) assert.fail(listing('directories to place in LAYERS (test/unit/layering.test.ts)', unplaced));
});

test('imports under src/ run one way: cli → gateway → {auth, registry/api} → registry/core → registry/storage', () => {
  const { violations } = report();
  if (violations.length) assert.fail(listing('imports against the layering table', violations));
});

test('no import cycles between files under src/', () => {
  const { cycles } = report();
  if (cycles.length) assert.fail(listing('import cycles', cycles));
});

test('the checker itself: a synthetic graph with violations and a cycle', () => {
  const graph: ImportGraph = {
    'src/cli/main.ts': ['src/gateway/server.ts', 'src/config/load.ts', 'node:fs'],
    'src/gateway/server.ts': ['src/registry/api/app.ts', 'src/auth/basic.ts', 'src/debug/server.ts'],
    'src/registry/api/app.ts': ['src/registry/storage/factory.ts', 'src/config/load.ts', 'src/registry/api/router.ts'],
    'src/registry/api/router.ts': ['src/registry/api/handlers/uploads.ts', 'src/registry/notify/listener.ts'],
    'src/registry/api/handlers/uploads.ts': ['src/registry/api/router.ts', 'src/registry/core/upload.ts'],
    'src/registry/core/upload.ts': ['src/registry/api/errors.ts', 'src/registry/storage/paths.ts', 'node:http'],
    'src/registry/api/errors.ts': [],
    'src/registry/notify/listener.ts': ['src/registry/cache/memory.ts', 'src/log/logger.ts'],
    'src/registry/cache/memory.ts': ['src/util/observers.ts'],
    'src/registry/storage/factory.ts': ['src/config/schema.ts'],
    'src/registry/storage/paths.ts': [],
    'src/config/load.ts': ['src/config/schema.ts', 'src/registry/storage/factory.ts'],
    'src/config/schema.ts': ['src/registry/storage/paths.ts'],
    'src/auth/basic.ts': ['src/registry/api/errors.ts', 'src/cli/gc-command.ts', 'src/registry/core/gone.ts'],
    'src/cli/gc-command.ts': [],
    'src/debug/server.ts': ['src/gateway/server.ts'],
    'src/log/logger.ts': ['src/util/observers.ts', 'npm:pino'],
    'src/util/observers.ts': [],
    'src/plugins/x.ts': [],
    'src/registry/pull/proxy.ts': [],
  };
  const r = checkLayering(graph);
  assert.deepEqual(r.unplaced, ['src/plugins is not in the layering table', 'src/registry/pull is not in the layering table']);
  assert.deepEqual(r.violations, [
    'src/auth/basic.ts imports src/cli/gc-command.ts: nothing may import cli',
    'src/auth/basic.ts imports src/registry/api/errors.ts: auth may not import registry/api (siblings at rank 4)',
    'src/auth/basic.ts imports src/registry/core/gone.ts: no such file under src/',
    'src/config/schema.ts imports src/registry/storage/paths.ts: config may not import registry/storage (siblings at rank 1)',
    'src/debug/server.ts imports src/gateway/server.ts: debug may not import gateway (siblings at rank 5)',
    'src/registry/api/router.ts imports src/registry/notify/listener.ts: registry/api may not import registry/notify (it goes through registry/core\'s Repository)',
    'src/registry/core/upload.ts imports node:http: registry/core may not import node:http',
    'src/registry/core/upload.ts imports src/registry/api/errors.ts: registry/core may not import registry/api (rank 2 below rank 4)',
    'src/registry/notify/listener.ts imports src/registry/cache/memory.ts: registry/notify may not import registry/cache (siblings at rank 3)',
    'src/registry/storage/factory.ts imports src/config/schema.ts: registry/storage may not import config (only cli, gateway, debug, health, metrics may)',
  ]);
  assert.deepEqual(r.cycles, [
    'src/debug/server.ts → src/gateway/server.ts → src/debug/server.ts',
    'src/registry/api/handlers/uploads.ts → src/registry/api/router.ts → src/registry/api/handlers/uploads.ts',
  ]);
});

test('the reader: multi-line, type-only, re-exports, dynamic imports; comments dropped, // in strings kept', () => {
  const source = [
    "import {",
    "  a,",
    "  type B,",
    "} from './a.js';",
    "import type { C } from '../c.js';",
    "import type * as R from 'redis';",
    "export { d } from './d.js';",
    "export * from \"./e.js\";",
    "import './side-effect.js';",
    "spawn(node, ['--import', 'tsx', '-e', script]);",
    "const m = await import('./lazy.js');",
    "type P = typeof import('http-proxy-3');",
    "// import { no } from './commented.js';",
    "/* import('./block.js') */",
    "const u = 'http://x'; import { f } from './after-url.js';",
    "const re = /['\"]\\/\\//; import g from './after-regex.js';",
    "const t = `${'}'} // not a comment`; import h from './after-template.js';",
    "const url = new URL('x', import.meta.url);",
  ].join('\n');
  assert.deepEqual(importSpecifiers(source).sort(), [
    '../c.js', './a.js', './after-regex.js', './after-template.js', './after-url.js', './d.js', './e.js', './lazy.js', './side-effect.js',
    'http-proxy-3', 'redis',
  ]);
  assert.equal(resolveSpecifier('src/registry/api/router.ts', '../core/errors.js'), 'src/registry/core/errors.ts');
  assert.equal(resolveSpecifier('src/cli/main.ts', '../../test/x.js'), 'test/x.ts');
  assert.equal(resolveSpecifier('src/cli/main.ts', 'node:fs'), 'node:fs');
  assert.equal(resolveSpecifier('src/cli/main.ts', 'pino'), 'npm:pino');
});
