// Environment overrides. REGISTRY_* variables are resolved as Distribution's parser does
// (configuration/parser.go): applied in name order, the name split at "_", struct fields matched by Go
// field name in upper case, map keys case-insensitively (new ones lower-cased), list items by index,
// values parsed as YAML, a variable naming a section replacing the section. In a config.yml they change
// the Distribution document before mapping; in gateway.yml they are routed through the same mapping
// rules (distribution.ts) to berth's keys. BERTH_LOG_LEVEL comes last. No validation happens here.
import { Pair, Scalar, YAMLMap, YAMLSeq, isAlias, isMap, isPair, isSeq, parseDocument, visit, type Document, type Node } from 'yaml';
import type { ConfigProblem } from './config-error.js';
import { DISTRIBUTION_CONFIG, TYPED_SECTIONS, structField, type DType } from './distribution-schema.js';
import { isEmpty, keyString, mapAt, routeEnvPath, targetsUnder, typeNameMap, type MapSink } from './distribution.js';

export type Env = Record<string, string | undefined>;

export const ENV_PREFIX = 'REGISTRY_';
/** berth's own variables, applied after REGISTRY_* (so they win), as dotted berth paths. */
export const BERTH_ENV: Record<string, string> = { BERTH_LOG_LEVEL: 'log.level' };

export interface EnvContext {
  doc: Document;
  problems: ConfigProblem[];
  warnings: string[];
  /** Nodes created from environment variables → "env NAME" (they have no position). */
  envOrigin: WeakMap<object, string>;
  /** A sink for one variable in gateway.yml style (its emit writes berth paths into `doc`). */
  gatewaySink(name: string): MapSink;
}

const ANY: DType = { t: 'any' };

/** REGISTRY_* in name order (Distribution sorts them so REGISTRY_STORAGE comes before REGISTRY_STORAGE_…). */
function registryVars(env: Env): string[] {
  // REGISTRY_CONFIGURATION_PATH names the file (cli/config-path.ts), not a key in it (Distribution skips it too).
  return Object.keys(env).filter((n) => n.startsWith(ENV_PREFIX) && n !== 'REGISTRY_CONFIGURATION_PATH' && env[n] !== undefined).sort();
}

/** The variable's value as a YAML node (Distribution unmarshals it as YAML), marked with its origin. */
function valueNode(name: string, env: Env, ctx: EnvContext): Node {
  const text = env[name] ?? '';
  const d = parseDocument(text);
  const node = ctx.doc.createNode(d.errors.length ? text : d.toJS()) as Node;
  mark(node, name, ctx);
  return node;
}

/** Marks a created node (or a created key with its value) and everything below it as coming from `name`. */
function mark(node: Node | Pair, name: string, ctx: EnvContext): void {
  const origin = `env ${name}`;
  if (isPair(node)) { if (node.key) ctx.envOrigin.set(node.key, origin); if (node.value) mark(node.value as Node, name, ctx); return; }
  ctx.envOrigin.set(node, origin);
  visit(node, (_k, n) => { if (n && typeof n === 'object') ctx.envOrigin.set(n, origin); });
}

const unknown = (name: string) => `ignoring environment variable ${name}: no such Distribution config key`;
const problem = (ctx: EnvContext, name: string, path: string[], message: string) =>
  ctx.problems.push({ line: 0, col: 0, origin: `env ${name}`, path: path.join('.'), message });

// ------------------------------------------------------------------ config.yml style

/** Applies REGISTRY_* onto a Distribution config.yml document, as Distribution would. */
export function applyToDistribution(env: Env, ctx: EnvContext): void {
  for (const name of registryVars(env)) {
    const segs = name.slice(ENV_PREFIX.length).split('_');
    if (segs.length === 1 && segs[0] === 'VERSION') { ctx.warnings.push(`ignoring environment variable ${name}: the version cannot be overridden`); continue; }
    let container = ctx.doc.contents as YAMLMap | YAMLSeq;
    let type = DISTRIBUTION_CONFIG;
    const path: string[] = [];
    for (const [i, seg] of segs.entries()) {
      const step = stepInto(type, container, seg);
      if ('unknown' in step) { ctx.warnings.push(unknown(name)); break; }
      if ('problem' in step) { problem(ctx, name, [...path, seg], step.problem); break; }
      path.push(String(step.key));
      if (i === segs.length - 1) { mark(put(container, step.key, valueNode(name, env, ctx)), name, ctx); break; }
      if (step.type.t === 'scalar') { ctx.warnings.push(`ignoring environment variable ${name}: ${path.join('.')} is not a mapping`); break; }
      let child = resolve(ctx.doc, getChild(container, step.key));
      const typed = step.type === TYPED_SECTIONS ? typeNameMap(child) : undefined;   // `storage: filesystem`
      if (typed) { child = typed; put(container, step.key, typed); }   // keeps the file's positions
      const wantSeq = step.type.t === 'list';
      if (isEmpty(child)) {
        child = wantSeq ? new YAMLSeq() : new YAMLMap();
        mark(put(container, step.key, child), name, ctx);
      } else if (wantSeq ? !isSeq(child) : !isMap(child)) {
        problem(ctx, name, path, `cannot apply: ${path.join('.')} in the file is not a ${wantSeq ? 'list' : 'mapping'}`);
        break;
      }
      container = child as YAMLMap | YAMLSeq;
      type = step.type;
    }
  }
}

type Step = { key: string | number; type: DType } | { unknown: true } | { problem: string };

/** One path segment of a variable name against Distribution's type (and, when given, the document). */
function stepInto(type: DType, container: YAMLMap | YAMLSeq | undefined, seg: string): Step {
  switch (type.t) {
    case 'struct': {
      const f = structField(type, seg);
      return f ? { key: f.key, type: f.type } : { unknown: true };
    }
    case 'map':
    case 'any': {
      const existing = isMap(container) ? container.items.find((p) => keyString(p.key).toUpperCase() === seg) : undefined;
      return { key: existing ? keyString(existing.key) : seg.toLowerCase(), type: type.t === 'map' ? type.value : ANY };
    }
    case 'list': {
      if (!/^\d+$/.test(seg)) return { problem: `non-numeric list index "${seg}"` };
      const len = isSeq(container) ? container.items.length : 0;
      if (container && Number(seg) > len) return { problem: `undefined index ${seg}: the list has ${len} items (append at ${len})` };
      return { key: Number(seg), type: type.item };
    }
    case 'scalar':
      return { unknown: true };
  }
}

// ------------------------------------------------------------------ gateway.yml style

/** Routes REGISTRY_* through the Distribution mapping onto a gateway.yml document; then BERTH_*. */
export function applyToGateway(env: Env, ctx: EnvContext): void {
  for (const name of registryVars(env)) {
    const path = distributionPath(name.slice(ENV_PREFIX.length).split('_'));
    if (path === 'unknown') { ctx.warnings.push(unknown(name)); continue; }
    if ('problem' in path) { problem(ctx, name, path.at, path.problem); continue; }
    if (path.length === 1 && path[0] === 'version') { ctx.warnings.push(`ignoring environment variable ${name}: gateway.yml has no version`); continue; }
    const sink = ctx.gatewaySink(name);
    const route = routeEnvPath(path);
    for (const [p, note] of route.notes) sink.ignore(p, note, null);
    const at = path.slice(0, route.at);
    if (route.decision) {
      const d = route.decision;
      if ('ignore' in d) sink.ignore(at, d.ignore, null);
      else if ('refuse' in d) sink.refuse(at, d.refuse, null);
      continue;
    }
    for (const t of targetsUnder(at)) deleteIn(ctx.doc, t);   // a section's value replaces the section
    const value = wrap(valueNode(name, env, ctx), path.slice(route.at), name, ctx);
    if (mapAt(at, null, value, route.inherited, sink, route.other) === 'keep' && route.inherited) {
      sink.emit(route.inherited, value, null, at);
    }
  }
  applyBerthEnv(env, ctx);
}

/** The value nested under the rest of its path ([] → itself; "0" → a list), for a rule that decides by the whole value. */
function wrap(value: Node, rest: readonly string[], name: string, ctx: EnvContext): Node {
  let node = value;
  for (const seg of [...rest].reverse()) {
    const c: YAMLMap | YAMLSeq = /^\d+$/.test(seg) ? new YAMLSeq() : new YAMLMap();
    if (isSeq(c)) c.items.push(node); else c.items.push(new Pair(new Scalar(seg), node));
    mark(c, name, ctx);
    node = c;
  }
  return node;
}

/** BERTH_* variables (both styles), last, onto berth paths of the (mapped) document. */
export function applyBerthEnv(env: Env, ctx: EnvContext): void {
  for (const [name, path] of Object.entries(BERTH_ENV)) {
    if (env[name] === undefined) continue;
    ctx.gatewaySink(name).emit(path.split('.'), valueNode(name, env, ctx), null, []);
  }
}

/** A variable name's Distribution key path (types only: there is no Distribution document). */
function distributionPath(segs: string[]): string[] | 'unknown' | { problem: string; at: string[] } {
  let type = DISTRIBUTION_CONFIG;
  const path: string[] = [];
  for (const seg of segs) {
    const step = stepInto(type, undefined, seg);
    if ('unknown' in step) return 'unknown';
    if ('problem' in step) return { problem: step.problem, at: [...path, seg] };
    path.push(String(step.key));
    type = step.type;
  }
  return path;
}

/**
 * Sets a berth path in a gateway.yml document: creates missing mappings, matches keys case-insensitively
 * (header names), indexes lists (the next index appends). False when the file blocks the path.
 */
export function setIn(doc: Document, path: readonly string[], value: Node | null, keyRange?: Node['range']): boolean {
  if (isEmpty(doc.contents)) doc.contents = new YAMLMap() as never;
  let node: unknown = doc.contents;
  for (const [i, key] of path.entries()) {
    const last = i === path.length - 1;
    if (isSeq(node) && /^\d+$/.test(key)) {
      const idx = Number(key);
      if (idx > node.items.length) return false;
      if (last) { if (idx === node.items.length) node.items.push(value); else node.items[idx] = value; return true; }
      if (idx === node.items.length || isEmpty(node.items[idx])) node.items[idx] = /^\d+$/.test(path[i + 1]!) ? new YAMLSeq() : new YAMLMap();
      node = resolve(doc, node.items[idx]);
      continue;
    }
    if (!isMap(node)) return false;
    const pair = node.items.find((p) => keyString(p.key).toLowerCase() === key.toLowerCase());
    if (last) {
      if (pair) pair.value = value;
      else { const k = new Scalar(key); if (keyRange) k.range = keyRange; node.items.push(new Pair(k, value)); }
      return true;
    }
    const fresh = () => (/^\d+$/.test(path[i + 1]!) ? new YAMLSeq() : new YAMLMap());
    if (!pair) { const m = fresh(); node.items.push(new Pair(new Scalar(key), m)); node = m; continue; }
    if (isEmpty(pair.value)) pair.value = fresh();
    node = resolve(doc, pair.value);
  }
  return false;
}

function deleteIn(doc: Document, path: readonly string[]): void {
  let node: unknown = doc.contents;
  for (const [i, key] of path.entries()) {
    if (!isMap(node)) return;
    const idx = node.items.findIndex((p) => keyString(p.key) === key);
    if (idx < 0) return;
    if (i === path.length - 1) { node.items.splice(idx, 1); return; }
    node = resolve(doc, node.items[idx]!.value);
  }
}

function getChild(container: YAMLMap | YAMLSeq, key: string | number): unknown {
  if (isSeq(container)) return container.items[key as number];
  return container.items.find((p) => keyString(p.key) === String(key))?.value;
}

/**
 * Sets a child; a variable naming an existing key replaces its value (Distribution: "(re)create this
 * key"). Returns what the variable created (a new key with its value, or the value) for marking.
 */
function put(container: YAMLMap | YAMLSeq, key: string | number, value: Node): Node | Pair {
  if (isSeq(container)) {
    const idx = key as number;
    if (idx === container.items.length) container.items.push(value); else container.items[idx] = value;
    return value;
  }
  const pair = container.items.find((p) => keyString(p.key) === String(key));
  if (pair) { pair.value = value; return value; }
  const created = new Pair(new Scalar(String(key)), value);
  container.items.push(created);
  return created;
}

function resolve(doc: Document, n: unknown): Node | null {
  if (isAlias(n)) return (n.resolve(doc) as Node | undefined) ?? null;
  return (n as Node | null | undefined) ?? null;
}
