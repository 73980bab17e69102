// Loads gateway.yml: read → parse (positions, duplicate keys rejected) → environment overrides →
// validate against SCHEMA collecting every problem → defaults → absolute paths → cross-field checks
// → deep-freeze. Throws one ConfigError listing all problems. Knows no server, logger or driver.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  Document, LineCounter, Pair, Scalar, YAMLMap, isAlias, isMap, isScalar, isSeq, parseDocument, type Node, type ParsedNode,
} from 'yaml';
import { ConfigError, type ConfigProblem } from './config-error.js';
import {
  DEFAULT_STORAGE_DRIVER, ENV_ALIASES, ENV_PREFIX, SCHEMA, STORAGE_DRIVERS, type Config, type Field,
} from './schema.js';
import { DURATION_HINT, parseDuration, parseHostPort } from './values.js';

type Env = Record<string, string | undefined>;

export interface LoadOptions {
  /** Environment for overrides; default process.env. */
  env?: Env;
  /** Receives notes that are not errors (unrecognised REGISTRY_* variables), for the caller to log. */
  warnings?: string[];
}

/** Reads and validates a config file. Environment overrides come from `opts.env` (default process.env). */
export async function loadConfig(file: string, opts: LoadOptions = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError(file, [{ line: 0, col: 0, path: '', message: `cannot read config: ${why}` }]);
  }
  return loadConfigFromString(text, file, opts.env ?? process.env, opts.warnings);
}

/** Validates config text as if read from `file` (used for messages and relative paths). Env defaults to none. */
export function loadConfigFromString(text: string, file: string, env: Env = {}, warnings: string[] = []): Config {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  const ctx: Ctx = { lc, doc, problems: [], baseDir: dirname(resolve(file)), envOrigin: new WeakMap() };

  let syntaxOk = true;
  for (const e of [...doc.errors, ...doc.warnings]) {
    const { line, col } = lc.linePos(e.pos[0]);
    if (e.code === 'DUPLICATE_KEY') {
      const path = keyPathAt(doc.contents, e.pos[0], []) ?? '';
      ctx.problems.push({ line, col, path, message: `duplicate key "${path.split('.').pop()}"` });
    } else {
      syntaxOk = false;
      ctx.problems.push({ line, col, path: '', message: `YAML: ${e.message}` });
    }
  }
  if (syntaxOk) {
    applyEnv(env, ctx, warnings);
    const raw = walk(doc.contents, SCHEMA, [], undefined, ctx) as Record<string, any> | undefined;
    if (raw) crossChecks(raw, ctx);
    if (ctx.problems.length === 0) {
      return deepFreeze({ source: resolve(file), ...raw } as Config);
    }
  }
  const sorted = ctx.problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (rank(a.p) - rank(b.p)) || (a.p.col - b.p.col) || (a.i - b.i))
    .map(({ p }) => p);
  throw new ConfigError(file, sorted);
}

const rank = (p: ConfigProblem) => (p.line > 0 ? p.line : Number.MAX_SAFE_INTEGER);

interface Ctx {
  lc: LineCounter;
  doc: Document;
  problems: ConfigProblem[];
  baseDir: string;
  /** Nodes created from environment variables → "env NAME" (they have no position). */
  envOrigin: WeakMap<object, string>;
}

// ------------------------------------------------------------------------------ environment

function applyEnv(env: Env, ctx: Ctx, warnings: string[]): void {
  const registry = (SCHEMA as { fields: Record<string, Field> }).fields.registry;
  const sets: [string, string[]][] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX) || name in ENV_ALIASES) continue;
    const path = envPath(name.slice(ENV_PREFIX.length).split('_'), registry);
    if (path) sets.push([name, ['registry', ...path]]);
    else warnings.push(`ignoring environment variable ${name}: no such key under registry`);
  }
  for (const [name, path] of Object.entries(ENV_ALIASES)) if (name in env) sets.push([name, [...path]]);

  for (const [name, path] of sets) {
    const node = ctx.doc.createNode(parseEnvValue(env[name] ?? ''));
    ctx.envOrigin.set(node as object, `env ${name}`);
    if (!setIn(ctx.doc, path, node)) {
      ctx.problems.push({
        line: 0, col: 0, origin: `env ${name}`, path: path.join('.'),
        message: 'cannot apply: a parent key in the file is not a mapping',
      });
    }
  }
}

/** Sets `path` to `value`, creating (or replacing empty `key:`) mappings on the way. False if blocked. */
function setIn(doc: Document, path: string[], value: Node): boolean {
  const isEmpty = (n: unknown) => n === null || n === undefined || (isScalar(n) && n.value === null);
  if (isEmpty(doc.contents)) doc.contents = new YAMLMap() as any;
  let map: unknown = doc.contents;
  for (const [i, key] of path.entries()) {
    if (!isMap(map)) return false;
    const pair = map.items.find((p) => keyOf(p.key) === key);
    if (i === path.length - 1) {
      if (pair) pair.value = value; else map.items.push(new Pair(new Scalar(key), value));
      return true;
    }
    if (!pair) { const m = new YAMLMap(); map.items.push(new Pair(new Scalar(key), m)); map = m; continue; }
    if (isEmpty(pair.value)) pair.value = new YAMLMap();
    map = isAlias(pair.value) ? pair.value.resolve(doc) : pair.value;
  }
  return false;
}

const keyOf = (k: unknown): string | undefined =>
  isScalar(k) ? String(k.value) : (typeof k === 'string' || typeof k === 'number') ? String(k) : undefined;

/** Matches upper-case segments against the schema's keys (a key may itself contain "_"). */
function envPath(segs: string[], field: Field): string[] | null {
  if (segs.length === 0) return [];
  if (field.kind !== 'object') return null;
  for (const key of Object.keys(field.fields)) {
    const ks = key.toUpperCase().split('_');
    if (ks.every((s, i) => segs[i] === s)) {
      const rest = envPath(segs.slice(ks.length), field.fields[key]);
      if (rest) return [key, ...rest];
    }
  }
  return null;
}

/** Like Distribution: the value is YAML ("true" → boolean, "{}" → mapping); unparsable → the string. */
function parseEnvValue(v: string): unknown {
  const d = parseDocument(v);
  return d.errors.length ? v : d.toJS();
}

// ------------------------------------------------------------------------------ validation

function walk(node: Node | null | undefined, field: Field, path: string[], origin: string | undefined, ctx: Ctx): unknown {
  if (node === undefined) return defaults(field, ctx);
  if (node && isAlias(node)) node = node.resolve(ctx.doc) ?? null;
  origin = (node && ctx.envOrigin.get(node)) ?? origin;
  const fail = (wanted: string, note = ''): undefined => {
    const message = `expected ${wanted}, found ${describe(node)}${note}`;
    ctx.problems.push({ ...position(node, origin, ctx), path: path.join('.'), message });
    return undefined;
  };
  const scalar = node && isScalar(node) ? node.value : undefined;

  switch (field.kind) {
    case 'object': {
      if (node === null || (isScalar(node) && node.value === null)) return defaults({ ...field, optional: false }, ctx);
      if (!isMap(node)) return fail('a mapping');
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        const key = keyOf(keyNode);
        const keyPath = [...path, key ?? '?'];
        if (key === undefined || !Object.hasOwn(field.fields, key)) {
          const known = Object.keys(field.fields);
          ctx.problems.push({
            ...position(keyNode, origin, ctx), path: keyPath.join('.'),
            message: known.length
              ? `unknown key, expected one of: ${known.join(', ')}`
              : 'unknown key, expected an empty mapping',
          });
          continue;
        }
        // `key:` with no value is reported at the key
        const value = pair.value as Node | null;
        const empty = value === null || (isScalar(value) && value.value === null && !ctx.envOrigin.has(value));
        out[key] = walk(empty ? nullAt(keyNode) : value, field.fields[key], keyPath, origin, ctx);
      }
      for (const [k, f] of Object.entries(field.fields)) {
        if (!(k in out) && !isOptional(f)) out[k] = defaults(f, ctx);
        if (out[k] === undefined && isOptional(f)) delete out[k];
      }
      return out;
    }
    case 'boolean':
      return typeof scalar === 'boolean' ? scalar : fail('true or false');
    case 'integer': {
      if (typeof scalar !== 'number' || !Number.isInteger(scalar)) return fail('an integer');
      if (field.min !== undefined && scalar < field.min) return fail(`an integer ≥ ${field.min}`);
      if (field.max !== undefined && scalar > field.max) return fail(`an integer ≤ ${field.max}`);
      return scalar;
    }
    case 'duration': {
      if (typeof scalar === 'number') return fail(DURATION_HINT, ` (a bare number has no unit: write ${scalar}s or ${scalar}h)`);
      if (typeof scalar !== 'string') return fail(DURATION_HINT);
      const r = parseDuration(scalar);
      if ('error' in r) return push(ctx, node, origin, path, r.error);
      if (field.positive && !(r.ms > 0)) return fail('a duration above zero');
      return r.ms;
    }
    case 'string': {
      if (typeof scalar !== 'string') return fail('a string');
      const bad = field.check?.(scalar);
      return bad ? fail(bad.wanted, bad.note) : scalar;
    }
    case 'list': {
      if (node === null || (isScalar(node) && node.value === null)) return [...field.default];
      if (!isSeq(node)) return fail('a list of strings');
      const out: string[] = [];
      for (const [i, item] of node.items.entries()) {
        const v = walk(item as Node, { kind: 'string', check: field.check }, [...path, String(i)], origin, ctx);
        if (typeof v === 'string') out.push(v);
      }
      return out;
    }
    case 'objectlist': {
      if (node === null || (isScalar(node) && node.value === null)) return [];
      if (!isSeq(node)) return fail('a list of mappings');
      const out: unknown[] = [];
      for (const [i, item] of node.items.entries()) {
        const itemPath = [...path, String(i)];
        const itemNode = item && isAlias(item) ? item.resolve(ctx.doc) : item;
        if (isMap(itemNode)) {
          for (const k of field.required) {
            if (!itemNode.items.some((p) => keyOf(p.key) === k)) push(ctx, itemNode as Node, origin, [...itemPath, k], 'missing required key');
          }
        }
        const v = walk((item ?? null) as Node | null, field.item, itemPath, origin, ctx);
        if (v !== undefined) out.push(v);
      }
      return out;
    }
    case 'headers': {
      if (node === null || (isScalar(node) && node.value === null)) return {};
      if (!isMap(node)) return fail('a mapping of header name to string or list of strings');
      const out: Record<string, string[]> = {};
      for (const pair of node.items) {
        const key = keyOf(pair.key);
        const v = pair.value as Node | null;
        const vals = v && isSeq(v) ? v.items.map((x) => (isScalar(x) ? x.value : undefined)) : [v && isScalar(v) ? v.value : undefined];
        if (key === undefined || !vals.every((x) => typeof x === 'string')) {
          push(ctx, (pair.key as Node | null), origin, [...path, key ?? '?'], 'expected a string or a list of strings');
          continue;
        }
        out[key] = vals as string[];
      }
      return out;
    }
    case 'enum':
      return typeof scalar === 'string' && field.values.includes(scalar) ? scalar : fail(`one of ${field.values.join(', ')}`);
    case 'path':
      return typeof scalar === 'string' && scalar !== '' ? resolve(ctx.baseDir, scalar) : fail('a non-empty path');
    case 'hostport': {
      if (typeof scalar !== 'string') return fail('a string "host:port"');
      const r = parseHostPort(scalar);
      if ('error' in r) return push(ctx, node, origin, path, r.error);
      return r;
    }
  }
}

/** The default value of a field (objects: all their non-optional fields' defaults). */
function defaults(field: Field, ctx: Ctx): unknown {
  switch (field.kind) {
    case 'object': {
      if (field.optional) return undefined;
      const out: Record<string, unknown> = {};
      for (const [k, f] of Object.entries(field.fields)) if (!isOptional(f)) out[k] = defaults(f, ctx);
      return out;
    }
    case 'string': return field.default;
    case 'list': return [...field.default];
    case 'objectlist': return [];
    case 'headers': return {};
    case 'duration': return (parseDuration(field.default) as { ms: number }).ms;
    case 'path': return resolve(ctx.baseDir, field.default);
    case 'hostport': return parseHostPort(field.default);
    default: return field.default;
  }
}

/** Fields that stay absent when not written (no defaults): optional sections and optional strings. */
function isOptional(f: Field): boolean {
  return (f.kind === 'object' || f.kind === 'string') && f.optional === true;
}

function crossChecks(cfg: Record<string, any>, ctx: Ctx): void {
  notificationChecks(cfg.registry?.notifications, ctx);
  const storage = cfg.registry?.storage;
  if (!storage) return;
  const found = STORAGE_DRIVERS.filter((d) => storage[d] !== undefined);
  if (found.length > 1) {
    const keyNode = findKey(ctx.doc.getIn(['registry', 'storage'], true) as Node, found[1]);
    ctx.problems.push({
      ...position(keyNode, ctx.envOrigin.get(ctx.doc.getIn(['registry', 'storage', found[1]], true) as object), ctx),
      path: 'registry.storage', message: `expected exactly one driver, found: ${found.join(', ')}`,
    });
  }
  const driver = found[0] ?? DEFAULT_STORAGE_DRIVER;
  const schemaStorage = ((SCHEMA as any).fields.registry.fields.storage as { fields: Record<string, Field> }).fields;
  if (storage[driver] === undefined) storage[driver] = defaults({ ...schemaStorage[driver], optional: false } as Field, ctx);
  cfg.registry.storage = { driver, ...storage };
  if (storage.cache?.blobdescriptor === 'redis' && !cfg.registry.redis) {   // as Distribution: redis needs its section
    const node = ctx.doc.getIn(['registry', 'storage', 'cache', 'blobdescriptor'], true) as Node;
    ctx.problems.push({
      ...position(node, ctx.envOrigin.get(node as object), ctx),
      path: 'registry.storage.cache.blobdescriptor', message: 'redis needs a registry.redis section (at least redis.addr)',
    });
  }
}

/** Endpoint names key the journal offsets, so they must be unique; journaldirectory is a path. */
function notificationChecks(n: Record<string, any> | undefined, ctx: Ctx): void {
  if (!n) return;
  if (typeof n.journaldirectory === 'string') n.journaldirectory = resolve(ctx.baseDir, n.journaldirectory);
  const seen = new Set<string>();
  for (const [i, e] of (n.endpoints as { name?: string }[] ?? []).entries()) {
    if (e.name === undefined) continue;
    if (seen.has(e.name)) {
      const node = ctx.doc.getIn(['registry', 'notifications', 'endpoints', i, 'name'], true) as Node;
      ctx.problems.push({ ...position(node, ctx.envOrigin.get(node as object), ctx), path: `registry.notifications.endpoints.${i}.name`, message: `duplicate endpoint name "${e.name}"` });
    }
    seen.add(e.name);
  }
}

// ------------------------------------------------------------------------------ helpers

function push(ctx: Ctx, node: Node | null, origin: string | undefined, path: string[], message: string): undefined {
  ctx.problems.push({ ...position(node, origin, ctx), path: path.join('.'), message });
  return undefined;
}

function position(node: Node | null | undefined, origin: string | undefined, ctx: Ctx): Pick<ConfigProblem, 'line' | 'col' | 'origin'> {
  // Parsed nodes always carry a range; nodes created from environment variables never do.
  if (node?.range) { const { line, col } = ctx.lc.linePos(node.range[0]); return { line, col }; }
  return { line: 0, col: 0, origin: origin ?? 'environment' };
}

/** A null scalar for `key:` with no value, positioned at the key. */
function nullAt(keyNode: Node | null): Node {
  const n = new Scalar(null);
  if (keyNode?.range) n.range = keyNode.range;
  return n;
}

function describe(node: Node | null | undefined): string {
  if (!node) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null || v === undefined) return 'nothing';
    if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
    return `${typeof v} ${String(v)}`;
  }
  return 'an unsupported YAML value';
}

function findKey(map: Node | undefined, key: string): Node | undefined {
  if (!map || !isMap(map)) return undefined;
  const pair = map.items.find((p) => keyOf(p.key) === key);
  return pair?.key as Node | undefined;
}

/** The dotted path of the map key starting at `offset` (for duplicate-key messages). */
function keyPathAt(node: unknown, offset: number, path: string[]): string | undefined {
  if (!node || !(isMap(node) || isSeq(node))) return undefined;
  for (const [i, item] of node.items.entries()) {
    if (isMap(node)) {
      const pair = item as { key: ParsedNode | null; value: unknown };
      const k = keyOf(pair.key) ?? '?';
      if (pair.key?.range?.[0] === offset) return [...path, k].join('.');
      const r = keyPathAt(pair.value, offset, [...path, k]);
      if (r) return r;
    } else {
      const r = keyPathAt(item, offset, [...path, String(i)]);
      if (r) return r;
    }
  }
  return undefined;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
