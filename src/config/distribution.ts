// Maps a CNCF Distribution config.yml (version 0.1) onto berth's own document: each Distribution key is
// honoured (its YAML node moves to a berth path, keeping its position for error messages), ignored
// (listed in the one startup warning), or refused (a config error: security-relevant keys berth cannot
// honour). The same rules route REGISTRY_* variables in gateway.yml style (env.ts). It validates
// nothing berth's schema validates; it never reads files and never logs.
import { Pair, Scalar, YAMLMap, isMap, isScalar, isSeq, type Node } from 'yaml';
import { driverNames } from '../registry/storage/factory.js';

/** What berth does with one Distribution key. */
export type Decision =
  | { to: string; node?: Node | null; sub?: string }   // honoured at this dotted berth path (descendants follow unless
                                                      // a deeper rule says otherwise); `node`/`sub`: a part of the value moves
  | { keep: true; note?: string }         // inside a moved section: stays where it is (`note`: honoured differently, listed)
  | { ignore: string }                    // not honoured: listed in the startup warning with this reason
  | { refuse: string }                    // a config error with this message
  | { drop: true }                        // honoured by doing nothing (e.g. http.net: tcp)
  | { section: true };                    // a mapping whose children have their own rules

interface Rule {
  base: Decision;
  /** Decides by value (may normalise the node in place); undefined → base. */
  value?: (node: Node | null) => Decision | undefined;
  /** For children without a rule of their own (default: an unknown-key error in sections, keep in moved ones). */
  other?: (key: string) => Decision;
  /** `value` needs the whole value: a REGISTRY_* variable naming a key below is decided here (env.ts wraps it). */
  whole?: boolean;
}

export interface MapSink {
  emit(target: string[], node: Node | null, key: Node | null, from: string[]): void;
  ignore(path: string[], reason: string, at: Node | null): void;
  refuse(path: string[], message: string, at: Node | null): void;
}

/** Distribution's storage drivers that berth has not registered (yet): refused as "not supported yet". */
const UNSUPPORTED_DRIVERS = ['s3-aws', 'azure', 'gcs', 'swift', 'oss'];

const section: Decision = { section: true };
const keep: Decision = { keep: true };
const to = (path: string): Decision => ({ to: path });
const ignore = (reason: string): Rule => ({ base: { ignore: reason } });
const refuse = (message: string): Rule => ({ base: { refuse: message } });
const rule = (base: Decision, extra: Omit<Rule, 'base'> = {}): Rule => ({ base, ...extra });

/**
 * One row per Distribution key (`*` = any list index). README "Distribution config.yml" shows this
 * table; keep the two in step. Keys under a honoured section that have no row move with it and are
 * validated by berth's schema (so an unknown one is an error at its line:col).
 */
export const RULES: Record<string, Rule> = {
  '': rule(section),
  version: rule({ drop: true }),                         // checked before mapping: only 0.1
  log: rule(section),
  'log.level': rule(to('log.level'), { value: lowerCase }),
  'log.formatter': rule(to('log.formatter')),
  'log.fields': rule(to('log.fields')),
  'log.hooks': ignore('log hooks are not supported'),
  'log.accesslog': rule(to('log.accesslog')),
  'log.reportcaller': ignore('not supported'),
  loglevel: rule(to('log.level'), { value: lowerCase }),
  storage: rule(to('registry.storage'), { value: (n) => typed('registry.storage', n), other: storageDriver }),
  ...Object.fromEntries(['delete', 'maintenance', 'redirect', 'cache'].map((k) => [`storage.${k}`, rule(keep)])),   // drivers: storageDriver
  'storage.tag': ignore('the tag lookup concurrency is not configurable'),
  auth: rule(to('auth'), { value: (n) => typed('auth', n), other: authType }),
  'auth.htpasswd': rule(keep),
  'auth.token': rule(keep),                                // Distribution's verifier keys are berth's auth.token keys
  'auth.token.jwksrefreshinterval': ignore('the jwks file is read at start'),
  middleware: ignore('middleware is not supported'),
  reporting: ignore('error reporting (bugsnag, newrelic) is not supported'),
  http: rule(section),
  'http.addr': rule(to('listen')),
  'http.net': rule({ drop: true }, { value: network }),
  'http.host': rule(to('urls.host')),
  'http.prefix': rule(to('urls.prefix')),
  'http.secret': ignore('upload state is kept on the server, not signed into client state'),
  'http.relativeurls': rule(to('urls.relative')),
  'http.draintimeout': rule(to('proxy.draintimeout')),
  'http.tls': rule(to('tls')),
  'http.tls.certificate': rule(keep),
  'http.tls.key': rule(keep),
  'http.tls.minimumtls': rule(keep, { value: minimumTls }),
  'http.tls.clientcas': rule(keep),
  'http.tls.clientauth': rule(keep),
  'http.tls.ciphersuites': rule(keep),
  'http.tls.letsencrypt': refuse("Let's Encrypt is not supported: give http.tls.certificate and http.tls.key"),
  'http.headers': rule(to('headers')),
  'http.debug': rule(to('registry.http.debug')),
  'http.http2': rule({ ignore: 'berth serves HTTP/1.1 only' }, { value: (n) => (get(n, 'disabled') === true ? { drop: true } : undefined), whole: true }),
  'http.h2c': rule({ drop: true }, { value: (n) => (get(n, 'enabled') === true ? { ignore: 'berth serves HTTP/1.1 only' } : undefined), whole: true }),
  notifications: rule(to('registry.notifications')),
  redis: rule(to('registry.redis')),
  'redis.pool': rule({ keep: true, note: 'accepted, but berth uses one pipelined redis connection' }),
  'redis.maxidleconns': ignore('berth uses one pipelined redis connection'),
  'redis.poolsize': ignore('berth uses one pipelined redis connection'),
  'redis.connmaxidletime': ignore('berth uses one pipelined redis connection'),
  'redis.addrs': rule({ drop: true }, { value: redisAddrs, whole: true }),
  'redis.tls': rule({ drop: true }, { value: redisTls, whole: true }),
  health: rule(to('registry.health')),
  'health.file.*.threshold': ignore('Distribution ignores it too: a file check fails at once'),
  catalog: ignore('berth returns at most 1000 catalog entries per page'),
  proxy: rule(section, { other: () => ({ ignore: 'unused without proxy.remoteurl' }) }),
  'proxy.remoteurl': rule({ drop: true }, { value: remoteUrl }),
  // berth's own gateway settings in a config.yml: a top-level section registry:2 (2.8.2) ignores, so one file serves both
  berth: rule(section),
  'berth.upstreams': rule(to('upstreams')),
  'berth.clients': rule(to('clients')),
  'berth.proxy': rule(to('proxy')),
  compatibility: ignore('schema1 manifests are not supported'),
  validation: ignore('berth does not check layer URLs or index platforms of pushed manifests'),
  policy: ignore('repository classes are not enforced'),
};

/** Rule patterns and all their proper prefixes: where a moved section must be searched for deeper rules. */
const PREFIXES = new Set(Object.keys(RULES).flatMap((p) => p.split('.').map((_, i, a) => a.slice(0, i).join('.'))));

const patternOf = (path: readonly string[]) => path.map((s) => (/^\d+$/.test(s) ? '*' : s)).join('.');

/** The keys a section accepts (its rows one level down), for unknown-key messages. */
function childrenOf(pattern: string): string[] {
  const depth = pattern === '' ? 1 : pattern.split('.').length + 1;
  return Object.keys(RULES).filter((p) => p.split('.').length === depth && (pattern === '' || p.startsWith(`${pattern}.`)) && p !== '')
    .map((p) => p.split('.').pop()!).filter((k) => k !== '*');
}

/**
 * Maps `node` (at Distribution `path`) by the rules. `inherited`: the berth path it lands on when a
 * parent section moved (null at section level); `other`: the parent's rule for children without one.
 * Returns 'keep' when the node stays inside its (moved) parent.
 */
export function mapAt(path: string[], key: Node | null, node: Node | null, inherited: string[] | null,
  sink: MapSink, other?: (key: string) => Decision): 'keep' | 'remove' {
  const pattern = patternOf(path);
  const r = RULES[pattern];
  let d: Decision;
  if (r) d = r.value?.(node) ?? r.base;
  else if (other) d = other(path[path.length - 1]!);
  else if (inherited) d = keep;
  else d = { refuse: `unknown key, expected one of: ${childrenOf(patternOf(path.slice(0, -1))).join(', ')}` };

  if ('keep' in d && d.note) sink.ignore(path, d.note, key ?? node);
  if ('ignore' in d) { sink.ignore(path, d.ignore, key ?? node); return 'remove'; }
  if ('refuse' in d) { sink.refuse(path, d.refuse, key ?? node); return 'remove'; }
  if ('drop' in d) return 'remove';
  if ('section' in d) {
    if (isEmpty(node)) return 'remove';
    if (!isMap(node)) { sink.refuse(path, 'expected a mapping', node); return 'remove'; }
    for (const pair of [...node.items]) {
      mapAt([...path, keyString(pair.key)], pair.key as Node, pair.value as Node | null, null, sink, r?.other);
    }
    return 'remove';
  }
  if ('to' in d) {
    const target = d.to.split('.');
    const moved = d.node === undefined ? node : d.node;
    sink.emit(target, moved, key, d.sub === undefined ? path : [...path, d.sub]);   // first: deeper rules may add to or remove from the placed node
    prune(path, moved, target, sink, r?.other);
    return 'remove';
  }
  if (!inherited) { sink.refuse(path, 'cannot be set on its own', key ?? node); return 'remove'; }
  prune(path, node, inherited, sink, r?.other);
  return 'keep';
}

/** Applies deeper rules inside a moved node: removes ignored/refused keys, moves re-routed ones. */
function prune(path: string[], node: Node | null, target: string[], sink: MapSink, other?: (key: string) => Decision): void {
  if (!PREFIXES.has(patternOf(path)) && !other) return;
  if (isMap(node)) {
    for (const pair of [...node.items]) {
      const k = keyString(pair.key);
      const r = mapAt([...path, k], pair.key as Node, pair.value as Node | null, [...target, k], sink, other);
      if (r === 'remove') node.items.splice(node.items.indexOf(pair), 1);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => prune([...path, String(i)], item as Node, [...target, String(i)], sink));
  }
}

/** How one REGISTRY_* variable is routed in gateway.yml style (see routeEnvPath). */
export interface EnvRoute {
  /** Set when a section above the variable's key is ignored, refused or dropped as a whole. */
  decision?: Decision;
  /** Map the value at path.slice(0, at) (shorter than the path when a rule there decides by the whole value). */
  at: number;
  /** The berth path of path.slice(0, at) when it lies inside a moved section. */
  inherited: string[] | null;
  other?: (key: string) => Decision;
  /** Notes of the sections passed on the way (e.g. redis.pool: accepted, not honoured). */
  notes: [path: string[], note: string][];
}

/** For one REGISTRY_* variable in gateway.yml style: how the rules treat the sections above its key. */
export function routeEnvPath(path: readonly string[]): EnvRoute {
  let inherited: string[] | null = null;
  let other: ((key: string) => Decision) | undefined;
  const notes: [string[], string][] = [];
  for (let i = 0; i < path.length - 1; i++) {
    const prefix = path.slice(0, i + 1);
    const r = RULES[patternOf(prefix)];
    if (r?.whole) return { at: i + 1, inherited: inherited ? [...inherited, prefix[i]!] : null, other, notes };
    const d: Decision = r ? r.base : other ? other(prefix[i]!) : inherited ? keep : { refuse: 'unknown key' };
    if ('ignore' in d || 'refuse' in d || 'drop' in d) return { decision: d, at: i + 1, inherited: null, notes };
    if ('to' in d) inherited = d.to.split('.');
    else if ('keep' in d && inherited) inherited = [...inherited, prefix[i]!];
    if ('keep' in d && d.note) notes.push([prefix, d.note]);
    other = r?.other;
  }
  return { at: path.length, inherited: inherited ? [...inherited, path[path.length - 1]!] : null, other, notes };
}

/** Berth paths the rules can produce at or below a Distribution path (what an env value for it replaces). */
export function targetsUnder(path: readonly string[]): string[][] {
  const p = patternOf(path);
  return Object.entries(RULES)
    .filter(([k, r]) => (k === p || k.startsWith(`${p}.`)) && 'to' in r.base)
    .map(([, r]) => (r.base as { to: string }).to.split('.'));
}

/** Maps a whole config.yml (its root mapping): Distribution's section semantics first, then the rules. */
export function mapDistribution(root: YAMLMap, sink: MapSink): void {
  sectionSemantics(root, sink);
  mapAt([], null, root, null, sink);
}

/**
 * What Distribution decides per section rather than per key: `log.level` beats the deprecated `loglevel`;
 * TLS is on only with `http.tls.certificate` (then `key` is required and `letsencrypt` unused); the debug
 * listener exists only with `http.debug.addr`, and its Prometheus endpoint only when enabled.
 */
function sectionSemantics(root: YAMLMap, sink: MapSink): void {
  const loglevel = pairOf(root, 'loglevel');
  if (loglevel && !isEmpty(pairOf(child(root, 'log'), 'level')?.value)) {
    sink.ignore(['loglevel'], 'log.level takes precedence (as in Distribution)', loglevel.key as Node);
    remove(root, loglevel);
  }
  const http = child(root, 'http');
  if (!isMap(http)) return;
  // Distribution's relativeurls defaults to false: Location URLs are absolute, from http.host or else the request's own
  // Host and scheme (berth's own default, in gateway.yml, is relative)
  if (!pairOf(http, 'relativeurls')) http.items.push(new Pair(new Scalar('relativeurls'), new Scalar(false)));
  const tls = pairOf(http, 'tls');
  if (tls && isEmpty(tls.value)) remove(http, tls);
  else if (tls && isMap(tls.value)) {
    const t = tls.value;
    const cert = pairOf(t, 'certificate');
    const le = pairOf(t, 'letsencrypt');
    if (!cert || isEmpty(cert.value) || get(t, 'certificate') === '') {
      const cachefile = get(le?.value as Node ?? null, 'cachefile');
      if (!(typeof cachefile === 'string' && cachefile !== '')) {   // else the letsencrypt rule refuses
        for (const p of t.items) sink.ignore(['http', 'tls', keyString(p.key)], 'unused without http.tls.certificate: plain HTTP, as in Distribution', p.key as Node);
        remove(http, tls);
      }
    } else {
      if (le) { sink.ignore(['http', 'tls', 'letsencrypt'], 'unused: http.tls.certificate is set (as in Distribution)', le.key as Node); remove(t, le); }
      const key = get(t, 'key');
      if (typeof key !== 'string' || key === '') sink.refuse(['http', 'tls', 'key'], 'missing: required with http.tls.certificate', cert.key as Node);
    }
  }
  const debug = pairOf(http, 'debug');
  if (!debug) return;
  const addr = get(debug.value as Node, 'addr');
  if (typeof addr !== 'string' || addr === '') {
    if (!isEmpty(debug.value)) sink.ignore(['http', 'debug'], 'unused without http.debug.addr: no debug listener, as in Distribution', debug.key as Node);
    remove(http, debug);
  } else if (isMap(debug.value)) {
    const prom = pairOf(debug.value, 'prometheus');   // Distribution: off unless enabled (berth's own default is on)
    if (!prom || isEmpty(prom.value)) {
      const m = new YAMLMap();
      m.items.push(new Pair(new Scalar('enabled'), new Scalar(false)));
      if (prom) prom.value = m; else debug.value.items.push(new Pair(new Scalar('prometheus'), m));
    } else if (isMap(prom.value) && !pairOf(prom.value, 'enabled')) {
      prom.value.items.push(new Pair(new Scalar('enabled'), new Scalar(false)));
    }
  }
}

// ------------------------------------------------------------------ value rules

function lowerCase(node: Node | null): undefined {
  if (isScalar(node) && typeof node.value === 'string') node.value = node.value.toLowerCase();   // Distribution lower-cases levels
  return undefined;
}

/** Storage and Auth also accept a bare type name (`storage: filesystem`, REGISTRY_AUTH=htpasswd): `{name: {}}`. */
export function typeNameMap(node: Node | null): YAMLMap | undefined {
  if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') return undefined;
  const name = new Scalar(node.value);
  name.range = node.range;
  const m = new YAMLMap();
  m.items.push(new Pair(name, new YAMLMap()));
  m.range = node.range;
  return m;
}

function typed(target: string, node: Node | null): Decision | undefined {
  const m = typeNameMap(node);
  return m ? { to: target, node: m } : undefined;
}

/** A key under storage without a row: a registered driver's section stays (berth's schema checks its
 *  parameters); any other is refused, naming the registered drivers. */
function storageDriver(key: string): Decision {
  const names = driverNames();
  if (names.includes(key)) return keep;
  const has = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names.join('');
  if (UNSUPPORTED_DRIVERS.includes(key)) return { refuse: `storage driver "${key}" is not supported yet (berth has ${has})` };
  return { refuse: `unknown storage driver "${key}" (berth has ${has})` };
}

function authType(key: string): Decision {
  return { refuse: `auth type "${key}" is not supported: berth implements htpasswd and token only, and refuses to start rather than serve without the access control this config asks for` };
}

function network(node: Node | null): Decision | undefined {
  const v = scalar(node);
  if (v === undefined || v === null || v === '' || v === 'tcp') return { drop: true };
  if (v === 'tcp4' || v === 'tcp6') return { ignore: 'berth listens on the address family of http.addr' };
  if (v === 'unix') return { refuse: 'unix sockets are not supported yet' };
  return { refuse: `unknown network ${JSON.stringify(v)}, expected tcp` };
}

function minimumTls(node: Node | null): Decision | undefined {
  const v = scalar(node);
  if (isScalar(node) && (v === 'tls1.0' || v === 'tls1.1')) {
    node.value = 'tls1.2';
    return { keep: true, note: `${v} is below berth's minimum: using tls1.2` };
  }
  return undefined;
}

function redisAddrs(node: Node | null): Decision | undefined {
  if (isEmpty(node) || (isSeq(node) && node.items.length === 0)) return { drop: true };
  if (isSeq(node) && node.items.length === 1) return { to: 'registry.redis.addr', node: node.items[0] as Node, sub: '0' };
  if (isSeq(node)) return { refuse: 'several redis addresses (cluster, sentinel) are not supported yet: give one in redis.addr' };
  return { refuse: 'expected a list of one "host:port"' };
}

function redisTls(node: Node | null): Decision | undefined {
  if (isEmpty(node) || (isMap(node) && node.items.every((p) => isEmpty(p.value as Node) || (p.value as Scalar).value === false))) {
    return { drop: true };
  }
  return { refuse: 'redis over TLS is not supported yet' };
}

function remoteUrl(node: Node | null): Decision | undefined {
  if (isEmpty(node) || scalar(node) === '') return { drop: true };
  return { refuse: 'pull-through cache (proxy.remoteurl) is not supported yet: berth would serve as an ordinary push registry instead' };
}

// ------------------------------------------------------------------ helpers

export function isEmpty(n: unknown): boolean {
  return n === null || n === undefined || (isScalar(n) && (n.value === null || n.value === undefined));
}

export function keyString(k: unknown): string {
  return isScalar(k) ? String(k.value) : typeof k === 'string' || typeof k === 'number' ? String(k) : '?';
}

function scalar(n: Node | null): unknown {
  return isScalar(n) ? n.value : undefined;
}

function pairOf(map: unknown, key: string): Pair | undefined {
  return isMap(map) ? map.items.find((p) => keyString(p.key) === key) as Pair | undefined : undefined;
}

function child(map: unknown, key: string): Node | null {
  return (pairOf(map, key)?.value as Node | undefined) ?? null;
}

function remove(map: YAMLMap, pair: Pair): void {
  map.items.splice(map.items.indexOf(pair as never), 1);
}

/** A scalar child's value (`undefined` when absent or not a scalar). */
export function get(map: Node | null, key: string): unknown {
  if (!isMap(map)) return undefined;
  const p = map.items.find((i) => keyString(i.key) === key);
  return isScalar(p?.value) ? p.value.value : undefined;
}
