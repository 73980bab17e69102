// Loads gateway.yml or a Distribution config.yml: read → parse (positions, duplicate keys rejected) →
// [config.yml: version check, REGISTRY_* onto it, mapping to berth's keys] or [gateway.yml: REGISTRY_*
// routed to berth's keys] → validate against SCHEMA collecting every problem → defaults → absolute
// paths → cross-field checks → deep-freeze. Throws one ConfigError listing all problems (config.yml
// problems named by their Distribution key). Knows no server or logger; of storage drivers only their
// names and parameter tables (registry/storage/factory.ts), never a driver itself.
import { readFile } from 'node:fs/promises';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { dirname, resolve } from 'node:path';
import {
  Document, LineCounter, Scalar, YAMLMap, isAlias, isMap, isScalar, isSeq, parseDocument, type Node, type ParsedNode,
} from 'yaml';
import { checkParameter, driverNames } from '../registry/storage/factory.js';
import { ConfigError, type ConfigProblem } from './config-error.js';
import { keyString, mapDistribution, type MapSink } from './distribution.js';
import { applyBerthEnv, applyToDistribution, applyToGateway, setIn, type Env, type EnvContext } from './env.js';
import { DEFAULT_STORAGE_DRIVER, SCHEMA, driverSection, type Config, type Field } from './schema.js';
import { DURATION_HINT, parseDuration, parseHostPort } from './values.js';

export interface LoadOptions {
  /** Environment for overrides; default process.env. */
  env?: Env;
  /**
   * Receives notes that are not errors, for the caller to log: first the one line listing every
   * Distribution key berth does not honour (with its reason), then unrecognised REGISTRY_* variables.
   */
  warnings?: string[];
}

/** A Distribution key berth accepts but does not honour (it is listed in the startup warning). */
export interface IgnoredKey { path: string; reason: string; origin?: string }

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
  const ctx: Ctx = { lc, doc, problems: [], baseDir: dirname(resolve(file)), envOrigin: new WeakMap(), positions: new Map() };

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
    const ignored: IgnoredKey[] = [];
    const envWarnings: string[] = [];
    const distribution = isMap(doc.contents) && doc.contents.items.some((p) => keyString(p.key) === 'version');
    const renames: [berth: string, distribution: string][] = [];
    let validate = true;
    if (distribution) {
      validate = checkVersion(ctx);
      if (validate) {
        const envCtx = envContext(ctx, envWarnings, ignored);
        applyToDistribution(env, envCtx);
        const root = doc.contents as YAMLMap;
        doc.contents = new YAMLMap() as never;
        mapDistribution(root, distributionSink(ctx, ignored, renames));
        applyBerthEnv(env, envCtx);
      }
    } else {
      validate = pastedDistribution(ctx, ignored, renames);
      if (validate) applyToGateway(env, envContext(ctx, envWarnings, ignored));
    }
    if (validate) {
      layerinfoAlias(ctx, renames, distribution);
      const raw = record(walk(doc.contents, SCHEMA, [], undefined, ctx));
      if (raw) crossChecks(raw, ctx);
      if (raw && ctx.problems.length === 0) {
        if (ignored.length) warnings.push(ignoredLine(file, ignored));
        warnings.push(...envWarnings);
        const unusedStorage = sidecarStorageWarning(file, raw, ctx);
        if (unusedStorage) warnings.push(unusedStorage);
        // Validated against SCHEMA, which mirrors Config: the one place the walk's output is trusted as typed.
        const config = deepFreeze({ source: resolve(file), ...raw } as unknown as Config);
        LOCATIONS.set(config, { positions: ctx.positions, renames: distribution ? [...renames, ...DISTRIBUTION_NAMES] : renames });
        return config;
      }
    }
    for (const p of ctx.problems) p.path = rename(p.path, renames);
  }
  const sorted = ctx.problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (rank(a.p) - rank(b.p)) || (a.p.col - b.p.col) || (a.i - b.i))
    .map(({ p }) => p);
  throw new ConfigError(file, sorted);
}

/** config.yml names of berth sections, for values that took a default (no rename was recorded for them). */
const DISTRIBUTION_NAMES: [string, string][] = [
  ['registry.storage', 'storage'], ['registry.redis', 'redis'], ['registry.notifications', 'notifications'],
  ['registry.health', 'health'], ['registry.http', 'http'], ['listen', 'http.addr'], ['tls', 'http.tls'], ['headers', 'http.headers'],
];

/** Where a loaded config's values came from, for problems found after loading (see problemAt). */
const LOCATIONS = new WeakMap<object, { positions: Map<string, Pick<ConfigProblem, 'line' | 'col' | 'origin'>>; renames: [string, string][] }>();

/**
 * A problem with a loaded config's value at berth `path` (e.g. auth.htpasswd.path), found after loading
 * (a file that cannot be read, a port in use): positioned at the key's line:col (or its variable) and
 * named as the file names it (config.yml: the Distribution key), so it prints like a load error.
 */
export function problemAt(config: Config, path: string, message: string): ConfigProblem {
  const loc = LOCATIONS.get(config);
  const where = loc?.positions.get(path) ?? { line: 0, col: 0 };
  return { ...where, path: rename(path, loc?.renames ?? []), message };
}

/** Sidecar mode (upstreams.v2 is a URL) with a `registry.storage` section (written or from the environment):
 *  berth serves no storage then, so say once that the section is unused (the upstream keeps its own). */
function sidecarStorageWarning(file: string, raw: Record<string, unknown>, ctx: Ctx): string | undefined {
  const v2 = record(raw.upstreams)?.v2;
  const node = ctx.doc.getIn(['registry', 'storage'], true) as Node | undefined;
  if (v2 === undefined || v2 === 'embedded' || !node) return undefined;
  const at = position(node, ctx.envOrigin.get(node as object), ctx);
  const where = at.origin ? `${file} [${at.origin}]` : `${file}:${at.line}:${at.col}`;
  return `${where}  registry.storage  unused: upstreams.v2 is ${String(v2)} (sidecar mode), which keeps its own storage`;
}

/** The one warning line: every ignored key with its reason (and the variable when it came from one). */
export function ignoredLine(file: string, ignored: readonly IgnoredKey[]): string {
  const items = ignored.map((k) => `${k.path}${k.origin ? ` [${k.origin}]` : ''} (${k.reason})`);
  return `${file}: ignoring ${ignored.length} Distribution setting${ignored.length === 1 ? '' : 's'} berth does not honour: ${items.join('; ')}`;
}

/**
 * `storage.cache.layerinfo`: the name Distribution 2.8 still takes for `blobdescriptor` (which wins when
 * both are given, as there). Renamed in place before validation, so errors name the key as written.
 */
function layerinfoAlias(ctx: Ctx, renames: [string, string][], distribution: boolean): void {
  const cache = ctx.doc.getIn(['registry', 'storage', 'cache'], true);
  if (!isMap(cache)) return;
  const alias = cache.items.find((p) => keyOf(p.key) === 'layerinfo');
  if (!alias) return;
  if (cache.items.some((p) => keyOf(p.key) === 'blobdescriptor')) { cache.items.splice(cache.items.indexOf(alias), 1); return; }
  const key = new Scalar('blobdescriptor');
  const old = alias.key as Node | null;
  if (old?.range) key.range = old.range;
  const origin = old && ctx.envOrigin.get(old);
  if (origin) ctx.envOrigin.set(key, origin);
  alias.key = key;
  renames.push(['registry.storage.cache.blobdescriptor', `${distribution ? '' : 'registry.'}storage.cache.layerinfo`]);
}

/**
 * gateway.yml with a whole Distribution config.yml pasted under `registry:` (it has `version`): mapped as a
 * config.yml is (its log, http.addr, http.tls, http.headers, auth land on berth's keys), named `registry.<key>`
 * in messages. A berth key also set at the top level of the file is an error (the two would disagree).
 */
function pastedDistribution(ctx: Ctx, ignored: IgnoredKey[], renames: [string, string][]): boolean {
  const root = ctx.doc.contents;
  if (!isMap(root)) return true;
  const pair = root.items.find((p) => keyString(p.key) === 'registry');
  const reg = pair?.value;
  if (!isMap(reg) || !reg.items.some((p) => keyString(p.key) === 'version')) return true;
  const version = reg.items.find((p) => keyString(p.key) === 'version')!;
  const v = isScalar(version.value) ? version.value.value : undefined;
  if (v !== 0.1 && v !== '0.1') {
    push(ctx, (version.value ?? version.key) as Node, undefined, ['registry', 'version'], `expected 0.1 (the only Distribution config.yml version), found ${describe(version.value as Node)}`);
    return false;
  }
  root.items.splice(root.items.indexOf(pair!), 1);
  const inner = distributionSink(ctx, ignored, renames);
  const prefixed = (path: string[]) => ['registry', ...path];
  mapDistribution(reg, {
    emit(target, node, key, from) {
      if (target[0] !== 'registry' && ctx.doc.hasIn(target)) {
        const at = ctx.doc.getIn(target, true) as Node;
        inner.refuse(prefixed(from), `also set as ${target.join('.')} at line ${at?.range ? ctx.lc.linePos(at.range[0]).line : '?'}: give it once`, key ?? node);
        return;
      }
      inner.emit(target, node, key, prefixed(from));
    },
    ignore: (path, reason, at) => inner.ignore(prefixed(path), reason, at),
    refuse: (path, message, at) => inner.refuse(prefixed(path), message, at),
  });
  return true;
}

/** config.yml: `version` must be 0.1 (Distribution's only version; YAML reads it as a number or a string). */
function checkVersion(ctx: Ctx): boolean {
  const pair = (ctx.doc.contents as YAMLMap).items.find((p) => keyString(p.key) === 'version')!;
  const node = pair.value as Node | null;
  const v = node && isScalar(node) ? node.value : undefined;
  if (v === 0.1 || v === '0.1') return true;
  push(ctx, node === null || v === null ? pair.key as Node : node, undefined, ['version'], `expected 0.1 (the only Distribution config.yml version), found ${describe(node)}`);
  return false;
}

function envContext(ctx: Ctx, warnings: string[], ignored: IgnoredKey[]): EnvContext {
  return {
    doc: ctx.doc, problems: ctx.problems, warnings, envOrigin: ctx.envOrigin,
    gatewaySink: (name) => ({
      emit(target, node) {
        if (!setIn(ctx.doc, target, node)) {
          ctx.problems.push({ line: 0, col: 0, origin: `env ${name}`, path: target.join('.'), message: 'cannot apply: a parent key in the file is not a mapping' });
        }
      },
      ignore: (path, reason) => { ignored.push({ path: path.join('.'), reason, origin: `env ${name}` }); },
      refuse: (path, message) => { ctx.problems.push({ line: 0, col: 0, origin: `env ${name}`, path: path.join('.'), message }); },
    }),
  };
}

/** config.yml mapping: nodes move into the (new, empty) berth document; positions stay the file's. */
function distributionSink(ctx: Ctx, ignored: IgnoredKey[], renames: [string, string][]): MapSink {
  const originOf = (n: Node | null) => (n && !n.range ? ctx.envOrigin.get(n) ?? 'environment' : undefined);
  return {
    emit(target, node, key, from) {
      renames.push([target.join('.'), from.join('.')]);
      setIn(ctx.doc, target, node, key?.range);
    },
    ignore(path, reason, at) {
      const origin = originOf(at);
      ignored.push({ path: path.join('.'), reason, ...(origin ? { origin } : {}) });
    },
    refuse(path, message, at) {
      ctx.problems.push({ ...position(at, originOf(at), ctx), path: path.join('.'), message });
    },
  };
}

/** A berth path of a mapped config.yml → the Distribution key it came from (longest recorded prefix). */
function rename(path: string, renames: readonly [string, string][]): string {
  let best: [string, string] | undefined;
  for (const r of renames) {
    if ((path === r[0] || path.startsWith(`${r[0]}.`)) && (!best || r[0].length > best[0].length)) best = r;
  }
  return best ? best[1] + path.slice(best[0].length) : path;
}

const rank = (p: ConfigProblem) => (p.line > 0 ? p.line : Number.MAX_SAFE_INTEGER);

interface Ctx {
  lc: LineCounter;
  doc: Document;
  problems: ConfigProblem[];
  baseDir: string;
  /** Nodes created from environment variables → "env NAME" (they have no position). */
  envOrigin: WeakMap<object, string>;
  /** Where the values that name things outside the file (paths, addresses) were written: for problemAt. */
  positions: Map<string, Pick<ConfigProblem, 'line' | 'col' | 'origin'>>;
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
  if (field.kind === 'path' || field.kind === 'parameter' || field.kind === 'hostport' || field.kind === 'string') ctx.positions.set(path.join('.'), position(node, origin, ctx));

  switch (field.kind) {
    case 'object': {
      if (node === null || (isScalar(node) && node.value === null)) return defaults({ ...field, optional: false }, ctx);
      if (!isMap(node)) return fail('a mapping');
      const fields = fieldsOf(field);
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        const key = keyOf(keyNode);
        const keyPath = [...path, key ?? '?'];
        if (key === undefined || !Object.hasOwn(fields, key)) {
          const known = Object.keys(fields);
          // a key an environment variable added: name the variable (its key or its value carries the origin)
          const keyOrigin = (keyNode && ctx.envOrigin.get(keyNode)) ?? (pair.value ? ctx.envOrigin.get(pair.value as Node) : undefined) ?? origin;
          ctx.problems.push({
            ...position(keyNode, keyOrigin, ctx), path: keyPath.join('.'),
            message: known.length
              ? `unknown key, expected one of: ${known.join(', ')}`
              : 'unknown key, expected an empty mapping',
          });
          continue;
        }
        // `key:` with no value is reported at the key
        const value = pair.value as Node | null;
        const empty = value === null || (isScalar(value) && value.value === null && !ctx.envOrigin.has(value));
        out[key] = walk(empty ? nullAt(keyNode) : value, fields[key]!, keyPath, origin, ctx);
      }
      for (const [k, f] of Object.entries(fields)) {
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
        ctx.positions.set(itemPath.join('.'), position(itemNode as Node, origin, ctx));   // e.g. auth.access.rules.2 (problemAt)
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
        const bad = headerProblem(key, vals as string[], field.reserved);
        if (bad) { push(ctx, (pair.key as Node | null), origin, [...path, key], bad); continue; }
        out[key] = vals as string[];
      }
      return out;
    }
    case 'lists': {
      if (node === null || (isScalar(node) && node.value === null)) return {};
      if (!isMap(node)) return fail('a mapping of name to a list of strings');
      const out: Record<string, string[]> = {};
      for (const pair of node.items) {
        const key = keyOf(pair.key);
        const badName = key === undefined ? { wanted: 'a name' } : field.checkName?.(key);
        if (key === undefined || badName) {
          push(ctx, pair.key as Node | null, origin, [...path, key ?? '?'], `expected ${badName?.wanted ?? 'a name'}, found ${describe(pair.key as Node | null)}`);
          continue;
        }
        const v = walk((pair.value ?? nullAt(pair.key as Node | null)) as Node, { kind: 'list', default: [], check: field.check }, [...path, key], origin, ctx);
        if (Array.isArray(v)) out[key] = v as string[];
      }
      return out;
    }
    case 'scalars': {
      if (node === null || (isScalar(node) && node.value === null)) return {};
      if (!isMap(node)) return fail('a mapping of name to string, number or boolean');
      const out: Record<string, string | number | boolean> = {};
      for (const pair of node.items) {
        const key = keyOf(pair.key);
        const v = pair.value as Node | null;
        const value = v && isScalar(v) ? v.value : undefined;
        if (key === undefined || !['string', 'number', 'boolean'].includes(typeof value)) {
          push(ctx, (v ?? pair.key) as Node | null, origin, [...path, key ?? '?'], `expected a string, number or boolean, found ${describe(v)}`);
          continue;
        }
        out[key] = value as string | number | boolean;
      }
      return out;
    }
    case 'enum':
      return typeof scalar === 'string' && field.values.includes(scalar) ? scalar : fail(`one of ${field.values.join(', ')}`);
    case 'parameter': {
      const r = checkParameter(field.spec, scalar);
      if ('wanted' in r) return fail(r.wanted);
      return field.spec.kind === 'path' ? resolve(ctx.baseDir, String(r.value)) : r.value;
    }
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

/** An HTTP header name and values Node would refuse to send, or one berth sets itself. */
function headerProblem(name: string, values: string[], reserved: readonly string[] = []): string | undefined {
  try { validateHeaderName(name); } catch { return `invalid header name "${name}"`; }
  if (reserved.includes(name.toLowerCase())) return `"${name}" is set by berth itself and cannot be configured`;
  for (const v of values) {
    try { validateHeaderValue(name, v); } catch { return `invalid header value ${JSON.stringify(v)} (control characters)`; }
  }
  return undefined;
}

/** The default value of a field (objects: all their non-optional fields' defaults). */
function defaults(field: Field, ctx: Ctx): unknown {
  switch (field.kind) {
    case 'object': {
      if (field.optional) return undefined;
      const out: Record<string, unknown> = {};
      for (const [k, f] of Object.entries(fieldsOf(field))) if (!isOptional(f)) out[k] = defaults(f, ctx);
      return out;
    }
    case 'parameter': {
      const d = field.spec.default;
      return field.spec.kind === 'path' && d !== undefined ? resolve(ctx.baseDir, String(d)) : d;
    }
    case 'string': return field.default;
    case 'list': return [...field.default];
    case 'objectlist': return [];
    case 'headers': return {};
    case 'lists': return {};
    case 'scalars': return {};
    case 'duration': return (parseDuration(field.default) as { ms: number }).ms;
    case 'path': return resolve(ctx.baseDir, field.default);
    case 'hostport': return parseHostPort(field.default);
    default: return field.default;
  }
}

/** Fields that stay absent when not written (no defaults): optional sections, optional strings and
 *  driver parameters without a default. */
function isOptional(f: Field): boolean {
  if (f.kind === 'parameter') return f.spec.default === undefined;
  return (f.kind === 'object' || f.kind === 'string' || f.kind === 'list') && f.optional === true;
}

/** An object field's keys: the computed ones (`more`) first, then its own. */
function fieldsOf(f: Field & { kind: 'object' }): Record<string, Field> {
  return f.more ? { ...f.more(), ...f.fields } : f.fields;
}

/** Exactly one registered driver; its section (defaults when absent) becomes `storage.parameters`, next to `storage.driver`. */
function crossChecks(cfg: Record<string, unknown>, ctx: Ctx): void {
  tlsChecks(record(cfg.tls), ctx);
  tokenChecks(cfg, ctx);
  const access = record(record(cfg.auth)?.access);
  if (typeof access?.groupsfile === 'string') access.groupsfile = resolve(ctx.baseDir, access.groupsfile);
  const registry = record(cfg.registry);
  if (!registry) return;
  notificationChecks(record(registry.notifications), ctx);
  const storage = record(registry.storage);
  if (!storage) return;
  const drivers = driverNames();
  const found = Object.keys(storage).filter((k) => drivers.includes(k) && storage[k] !== undefined);   // file order
  if (found.length > 1) {
    const keyNode = findKey(ctx.doc.getIn(['registry', 'storage'], true) as Node, found[1]);
    ctx.problems.push({
      ...position(keyNode, ctx.envOrigin.get(ctx.doc.getIn(['registry', 'storage', found[1]], true) as object), ctx),
      path: 'registry.storage', message: `expected exactly one driver, found: ${found.join(', ')}`,
    });
  }
  const driver = found[0] ?? DEFAULT_STORAGE_DRIVER;
  const parameters = storage[driver] ?? defaults({ ...driverSection(driver), optional: false }, ctx);
  const rest = Object.fromEntries(Object.entries(storage).filter(([k]) => !drivers.includes(k)));
  registry.storage = { driver, parameters, ...rest };
  if (record(storage.cache)?.blobdescriptor === 'redis' && !registry.redis) {   // as Distribution: redis needs its section
    const node = ctx.doc.getIn(['registry', 'storage', 'cache', 'blobdescriptor'], true) as Node;
    ctx.problems.push({
      ...position(node, ctx.envOrigin.get(node as object), ctx),
      path: 'registry.storage.cache.blobdescriptor', message: 'redis needs a registry.redis section (at least redis.addr)',
    });
  }
}

/** tls.clientcas are paths; tls.clientauth defaults by them (Distribution: require-and-verify with CAs), and
 *  the verifying modes need them. */
function tlsChecks(t: Record<string, unknown> | undefined, ctx: Ctx): void {
  if (!t || !Array.isArray(t.clientcas)) return;
  t.clientcas = t.clientcas.map((p: string) => resolve(ctx.baseDir, p));
  const cas = (t.clientcas as string[]).length > 0;
  if (t.clientauth === '') t.clientauth = cas ? 'require-and-verify-client-cert' : 'none';
  if (!cas && /verify/.test(String(t.clientauth))) {
    const node = ctx.doc.getIn(['tls', 'clientauth'], true) as Node;
    ctx.problems.push({ ...position(node, ctx.envOrigin.get(node as object), ctx), path: 'tls.clientauth',
      message: `${String(t.clientauth)} needs tls.clientcas (the CAs client certificates are verified against)` });
  }
}

/**
 * auth.token (Distribution's required realm, service, issuer; a rootcertbundle or jwks) and auth.issuer (service,
 * issuer; someone to authenticate: auth.htpasswd or tls.clientcas); both set: the same service and issuer, since
 * /v2 then takes the tokens of both. Optional paths resolved against the file's directory.
 */
function tokenChecks(cfg: Record<string, unknown>, ctx: Ctx): void {
  const auth = record(cfg.auth);
  const token = record(auth?.token);
  const issuer = record(auth?.issuer);
  const at = (path: string[]) => {
    const node = (ctx.doc.getIn(path, true) ?? ctx.doc.getIn(path.slice(0, -1), true)) as Node;
    return position(node, ctx.envOrigin.get(node as object), ctx);
  };
  const problem = (path: string[], message: string) => ctx.problems.push({ ...at(path), path: path.join('.'), message });
  if (token) {
    for (const k of ['realm', 'service', 'issuer']) if (typeof token[k] !== 'string') problem(['auth', 'token', k], 'missing: required with auth.token');
    if (typeof token.jwks === 'string' && token.jwks.includes('://')) {
      problem(['auth', 'token', 'jwks'], 'a JWKS URL is not supported yet: give the path of a JSON Web Key Set file');
    }
    for (const k of ['rootcertbundle', 'jwks']) if (typeof token[k] === 'string') token[k] = resolve(ctx.baseDir, token[k] as string);
    if (!token.rootcertbundle && !token.jwks) problem(['auth', 'token', 'rootcertbundle'], 'token auth requires at least one token signing key: rootcertbundle or jwks');
  }
  if (issuer) {
    for (const k of ['service', 'issuer']) if (typeof issuer[k] !== 'string') problem(['auth', 'issuer', k], 'missing: required with auth.issuer');
    if (typeof issuer.certificate === 'string') issuer.certificate = resolve(ctx.baseDir, issuer.certificate);
    if (issuer.path === '' || issuer.path === '/' || (typeof issuer.path === 'string' && /^\/v[12](\/|$)/.test(issuer.path))) {
      problem(['auth', 'issuer', 'path'], 'expected a path outside /, /v1 and /v2, like /auth/token');
    }
    const cas = record(cfg.tls)?.clientcas;
    if (!auth?.htpasswd && !(Array.isArray(cas) && cas.length > 0)) {
      problem(['auth', 'issuer'], 'needs auth.htpasswd (or tls.clientcas) to know who asks for a token');
    }
    if (token) {
      for (const k of ['service', 'issuer']) {
        if (typeof token[k] === 'string' && typeof issuer[k] === 'string' && token[k] !== issuer[k]) {
          problem(['auth', 'token', k], `must equal auth.issuer.${k} (${JSON.stringify(issuer[k])}) when both are set: /v2 takes the tokens of both`);
        }
      }
    }
  }
}

/** Endpoint names key the journal offsets, so they must be unique; journaldirectory is a path. */
function notificationChecks(n: Record<string, unknown> | undefined, ctx: Ctx): void {
  if (!n) return;
  if (typeof n.journaldirectory === 'string') n.journaldirectory = resolve(ctx.baseDir, n.journaldirectory);
  const seen = new Set<string>();
  for (const [i, e] of (Array.isArray(n.endpoints) ? n.endpoints : []).entries()) {
    const name = record(e)?.name;
    if (typeof name !== 'string') continue;
    if (seen.has(name)) {
      const node = ctx.doc.getIn(['registry', 'notifications', 'endpoints', i, 'name'], true) as Node;
      ctx.problems.push({ ...position(node, ctx.envOrigin.get(node as object), ctx), path: `registry.notifications.endpoints.${i}.name`, message: `duplicate endpoint name "${name}"` });
    }
    seen.add(name);
  }
}

/** `v` as a mapping the walk produced, or undefined. */
function record(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined;
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

const keyOf = (k: unknown): string | undefined =>
  isScalar(k) ? String(k.value) : (typeof k === 'string' || typeof k === 'number') ? String(k) : undefined;

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
