// Config types and defaults in one place. load.ts validates raw YAML against SCHEMA (a declarative
// table: key → kind, default, enum/range), applies the defaults, resolves paths and deep-freezes.
// The `registry` section uses Distribution's config.yml keys verbatim (lowercase). Durations are
// parsed to milliseconds; paths are absolute after loading. No I/O and no YAML parsing here. The one
// exception to "defaults in one place": each storage driver's section comes from the driver's own
// parameter table (registry/storage/factory.ts), so a driver is described once, where it lives.
import { driverNames, driverParameters, type ParameterSpec } from '../registry/storage/factory.js';
import { checkCidr, checkRealm, checkRegExp, checkUpstreamURL, checkV2Upstream, type StringCheck } from './values.js';
import { opensslSuite } from './cipher-suites.js';
import { PATTERN_HINT, patternProblem } from '../util/repository-pattern.js';

const checkClientAuth: StringCheck = (s) =>
  (s === '' || (CLIENT_AUTH_MODES as readonly string[]).includes(s) ? undefined : { wanted: `one of ${CLIENT_AUTH_MODES.join(', ')}` });

const checkCipherSuite: StringCheck = (s) => {
  const r = opensslSuite(s);
  return 'wanted' in r ? r : undefined;
};

export interface UploadPurgingConfig {
  enabled: boolean;       // default true (as in distribution)
  age: number;            // ms, default 168h
  interval: number;       // ms, default 24h
  dryrun: boolean;        // default false
}

export interface StorageConfig {
  /** Exactly one driver key is present in YAML (none → filesystem); `driver` names it after loading:
   *  a driver registered with registry/storage/factory.ts. */
  driver: string;
  /** The chosen driver's section (`registry.storage.<driver>`), checked against the driver's parameter
   *  table: defaults applied, paths absolute. Callers build the driver with createDriver(driver, parameters, log). */
  parameters: Readonly<Record<string, unknown>>;
  delete: { enabled: boolean };                                 // default false
  maintenance: {
    uploadpurging: UploadPurgingConfig;
    /** berth: open upload sessions per user / per client address, in this process (0: no bound). Always
     *  filled by the loader; optional for configs built in code (absent → no bound). */
    uploadlimits?: { peruser: number; peraddress: number };   // default 1000, 1000
    readonly: { enabled: boolean };                             // default false
  };
  redirect: { disable: boolean };                               // default false
  /** Present only when `cache:` is: the blob-descriptor cache (absent → none, as in Distribution). */
  cache?: { blobdescriptor: 'inmemory' | 'redis'; blobdescriptorsize: number };   // default inmemory, 10000 entries
}

/** Distribution's redis keys. node-redis keeps one connection: `pool.*` is accepted but not used. */
export interface RedisConfig {
  addr: { host: string; port: number };   // default localhost:6379
  password?: string;
  db: number;                             // default 0
  dialtimeout: number;                    // ms, default 1s (connect)
  readtimeout: number;                    // ms, default 500ms (bound on each lookup)
  writetimeout: number;                   // ms, default 500ms (bound on each write/invalidation)
  pool: { maxidle: number; maxactive: number; idletimeout: number };   // accepted, not honoured
  /** berth: put before every key; absent → `berth:<hash of the storage identity>:`, '' → Distribution's keys. */
  keyprefix?: string;
}

/** Distribution's `health:` checks. threshold = consecutive failures before unhealthy (0 and 1: the first). */
export interface HealthConfig {
  storagedriver: { enabled: boolean; interval: number; threshold: number };   // default false, 10s, 3
  file: { file: string; interval: number }[];                                  // interval default 10s
  http: { uri: string; headers: Record<string, string[]>; statuscode: number; timeout: number; interval: number; threshold: number }[];
  tcp: { addr: { host: string; port: number }; timeout: number; interval: number; threshold: number }[];
}

/** Distribution's `http:` keys that berth honours: only the debug (metrics/health) listener. */
export interface RegistryHttpConfig {
  /** Present only when `debug:` is: a separate listener for /metrics, /debug/health, /debug/vars. */
  debug?: { addr: { host: string; port: number }; prometheus: { enabled: boolean; path: string } };
}

/** One of Distribution's notifications.endpoints[] (plus berth's `signingkey`). */
export interface NotificationEndpointConfig {
  name: string;
  url: string;
  headers: Record<string, string[]>;      // default {}
  timeout: number;                        // ms, default 1s
  threshold: number;                      // consecutive failures before backing off, default 10
  backoff: number;                        // ms, default 1s
  disabled: boolean;                      // default false
  ignoredmediatypes: string[];            // default []
  ignore: { mediatypes: string[]; actions: string[] };   // default [] / []
  signingkey?: string;                    // berth: HMAC-SHA256 key for X-Berth-Signature
}

/** Distribution's `notifications` section; events are journaled durably (berth) before a request completes. */
export interface NotificationsConfig {
  endpoints: NotificationEndpointConfig[];
  events: { includereferences: boolean };   // default false
  /** berth: journal directory; default <filesystem rootdirectory>/.notifications, memory for inmemory storage. */
  journaldirectory?: string;
  /** berth: bytes the journal keeps (the oldest events are dropped past it), default 64 MiB (the loader fills both). */
  journalmaxsize?: number;
  /** berth: ms an event is kept undelivered, default 168h. */
  journalmaxage?: number;
}

export interface RegistryConfig {
  storage: StorageConfig;
  notifications?: NotificationsConfig;   // present only when `notifications:` is
  redis?: RedisConfig;   // present only when `redis:` is
  /** Always filled by the loader; optional for configs built in code (absent → no checks, no debug listener). */
  health?: HealthConfig;
  http?: RegistryHttpConfig;
}

export interface LogConfig {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';   // default info
  /** Distribution's log.formatter: json (pino's lines, default), logstash (@timestamp, @version, message) or text
   *  (logfmt: time="…" level=info msg="…" key=value). Optional for configs built in code (absent: json). */
  formatter?: 'json' | 'logstash' | 'text';
  /** Static fields added to every line (Distribution's log.fields), default {}. */
  fields?: Record<string, string | number | boolean>;
  /** Distribution's log.accesslog.disabled: no `request completed` lines. Default false. */
  accesslog?: { disabled: boolean };
}

/** Present only when the `tls:` section is: then the gateway serves HTTPS only. */
export interface TlsConfig {
  certificate: string;              // PEM chain (leaf first), default certs/domain.crt
  key: string;                      // PEM key, default certs/domain.key
  minimumtls: 'tls1.2' | 'tls1.3';  // default tls1.2; TLS 1.3 is always on
  /** Go or OpenSSL names (config/cipher-suites.ts); [] (default): TLS 1.3's suites + Mozilla "intermediate". */
  ciphersuites: string[];
  /** PEM files of the CAs client certificates are verified against (absolute after loading), default []. */
  clientcas: string[];
  /** Distribution's modes; default require-and-verify-client-cert with clientcas, none without. */
  clientauth: ClientAuthMode;
}

export const CLIENT_AUTH_MODES = [
  'none', 'request-client-cert', 'require-any-client-cert', 'verify-client-cert-if-given', 'require-and-verify-client-cert',
] as const;
export type ClientAuthMode = typeof CLIENT_AUTH_MODES[number];

export interface AuthConfig {
  /** Present only when `auth.htpasswd` is: Basic auth on /v1 and /v2. Absent: anonymous access. */
  htpasswd?: { realm: string; path: string; cache: boolean };   // default Registry Realm, auth/htpasswd, true
  /** Present only when `auth.access` is: who may pull, push, delete where (auth/rules.ts). Absent, or no rules:
   *  every authenticated user may do everything. */
  access?: AccessConfig;
  /** Present only when `auth.token` is: Distribution's token verifier on /v1 and /v2 (Bearer JWTs of an external
   *  token server such as docker_auth, Harbor or GitLab; with `issuer` also: berth's own). */
  token?: TokenVerifierConfig;
  /** Present only when `auth.issuer` is: berth's own token endpoint, and /v2 verifies the tokens it signs. */
  issuer?: TokenIssuerConfig;
}

/** Distribution's auth.token keys (registry/auth/token): required realm, service, issuer; a rootcertbundle or jwks. */
export interface TokenVerifierConfig {
  realm: string;                 // the token server's URL clients are sent to
  service: string;               // the tokens' expected `aud`
  issuer: string;                // the tokens' expected `iss`
  rootcertbundle?: string;       // absolute after loading: PEM certificates (x5c roots; their keys by kid)
  jwks?: string;                 // absolute after loading: a JSON Web Key Set file (keys by kid)
  signingalgorithms: string[];   // default []: the asymmetric ones (auth/token/keys.ts DEFAULT_VERIFY_ALGORITHMS)
  autoredirect: boolean;         // default false: realm = this request's scheme://Host + autoredirectpath
  autoredirectpath: string;      // default /auth/token
}

/** berth's token endpoint (auth/token/issuer.ts). */
export interface TokenIssuerConfig {
  path: string;                  // default /auth/token: served on the public listener (under urls.prefix)
  realm: string;                 // default '': the absolute URL challenges name; '' = the request's scheme://Host + prefix + path
  service: string;               // required: the `aud` of the tokens (what clients pass as ?service=)
  issuer: string;                // required: the `iss` of the tokens
  key: string;                   // PEM private key (EC P-256 → ES256, RSA → RS256), default auth/token.key
  certificate?: string;          // PEM chain of the key (leaf first), absolute after loading: sent as x5c
  expiration: number;            // ms, default 5m: access token lifetime
  refreshexpiration: number;     // ms, default 720h: refresh token lifetime (docker login's identity token); 0: none
}

/** auth.access: groups (inline and/or from `groupsfile`), admins and the rules; every key optional. */
export interface AccessConfig {
  groups: Record<string, string[]>;         // default {}; group name → user names
  /** Absolute path of a YAML file of group → [users] (merged with `groups`; a group in both is an error). */
  groupsfile?: string;
  admins: string[];                         // default []; users or @groups that may do everything
  rules: AccessRuleConfig[];                // default []: no rules (every authenticated user may do everything)
}

/** One rule: the most specific pattern matching a repository decides (auth/rules.ts). Absent actions grant nothing. */
export interface AccessRuleConfig {
  repositories: string[];                   // patterns: `*` within a segment, `**` one or more segments
  pull?: string[];                          // principals: `*`, `anonymous`, `@group`, user
  push?: string[];                          // push implies pull
  delete?: string[];
}

export interface UpstreamsConfig {
  /** 'embedded' (the registry in this process) or an http(s)://host:port origin (sidecar mode). */
  v2: 'embedded' | string;
  /** http(s)://host:port of a legacy v1 registry; absent → /v1/ answers 404. */
  v1?: string;
  /** 'strip' (default): the v1 upstream never sees the client's Authorization; 'forward' passes it on. */
  v1auth: 'strip' | 'forward';
}

export interface ProxyConfig {
  readtimeout: number;      // ms a socket may sit idle between bytes (client side and upstream), default 900s
  headertimeout: number;    // ms for a client to send the complete request head (and a TLS handshake), default 20s
  maxheadersize: number;    // bytes of request head before 431, default 16384
  maxconnections: number;   // open client connections in total (at most half of RLIMIT_NOFILE), default 2048
  maxconnectionsperaddress: number;   // open connections from one client address, default 256
  bodytimeout: number;      // ms grace before a request body must keep bodyminrate, default 20s
  bodyminrate: number;      // bytes/s a body must average after bodytimeout (mod_reqtimeout's MinRate), default 500; 0: off
  trustedproxies: string[]; // CIDRs/addresses whose X-Forwarded-* are kept (appended to) instead of replaced
  /** ms in-flight requests may take to finish on SIGTERM before their connections are closed (Distribution's
   *  http.draintimeout), default 10s; 0: close them at once. Optional for configs built in code. */
  draintimeout?: number;
}

export interface Config {
  /** Absolute path of the file this came from (for messages); '' when built in code. */
  source: string;
  listen: { host: string; port: number };   // from "host:port", default 0.0.0.0:5000
  tls?: TlsConfig;
  auth?: AuthConfig;
  /** Added to every response of the public listener (Distribution's http.headers), default {}. */
  headers: Record<string, string[]>;
  upstreams: UpstreamsConfig;
  clients: { rejectuseragents: string };    // regex source; '' disables old-client rejection
  /** Distribution's http.prefix, http.host, http.relativeurls (gateway/url-mapping.ts). Optional for configs built
   *  in code (absent: no prefix, relative Location paths). */
  urls?: { prefix: string; host: string; relative: boolean };   // default '', '', true
  proxy: ProxyConfig;
  registry: RegistryConfig;
  log: LogConfig;
}

// ---------------------------------------------------------------------------------------------
// The declarative schema. Adding a section = adding rows here (and its type above); load.ts
// does not change unless a new *kind* of value appears.

export type Field =
  /** A mapping. `optional`: absent stays absent (no defaults), e.g. storage driver sections. `more`: keys
   *  known only when validating, listed before `fields` (registry.storage: one section per registered driver). */
  | { kind: 'object'; fields: Record<string, Field>; optional?: boolean; more?: () => Record<string, Field> }
  /** A storage driver parameter, checked by the driver's own table (registry/storage/parameters.ts):
   *  strings holding an int or bool are accepted, as Distribution's drivers accept them. */
  | { kind: 'parameter'; spec: ParameterSpec }
  | { kind: 'boolean'; default: boolean }
  | { kind: 'integer'; default: number; min?: number; max?: number }
  /** Go duration syntax ("168h", "1h30m", "500ms") → milliseconds. */
  | { kind: 'duration'; default: string; positive?: boolean }
  | { kind: 'enum'; values: readonly string[]; default: string }
  /** A filesystem path; relative ones resolve against the config file's directory. */
  | { kind: 'path'; default: string }
  /** "host:port" with host a name, IPv4 or [IPv6]; ":port" means every address of both families (host "::"). → { host, port } */
  | { kind: 'hostport'; default: string }
  /** A string; `check` returns an error message or undefined. No default + optional: absent stays absent. */
  | { kind: 'string'; default?: string; optional?: boolean; check?: StringCheck }
  /** A list of strings, each passed through `check`. `optional`: absent stays absent (no default). */
  | { kind: 'list'; default: readonly string[]; check?: StringCheck; optional?: boolean }
  /** A mapping of name → list of strings (auth.access.groups), default {}; `check` on each string. */
  | { kind: 'lists'; check?: StringCheck; checkName?: StringCheck }
  /** A list of mappings (default empty), each validated as `item`. */
  | { kind: 'objectlist'; item: Field & { kind: 'object' }; required: readonly string[] }
  /** HTTP headers: a mapping of name → string or list of strings (→ Record<string, string[]>), default {}.
   *  `reserved`: lower-case names that may not be configured. */
  | { kind: 'headers'; reserved?: readonly string[] }
  /** A mapping of name → string, number or boolean (log.fields), default {}. */
  | { kind: 'scalars' };

const obj = (fields: Record<string, Field>, optional = false): Field => ({ kind: 'object', fields, optional });
const bool = (d: boolean): Field => ({ kind: 'boolean', default: d });
const int = (d: number, min?: number, max?: number): Field => ({ kind: 'integer', default: d, min, max });
const duration = (d: string, positive = false): Field => ({ kind: 'duration', default: d, positive });
const oneOf = (values: readonly string[], d: string): Field => ({ kind: 'enum', values, default: d });
const path = (d: string): Field => ({ kind: 'path', default: d });
const hostport = (d: string): Field => ({ kind: 'hostport', default: d });
const str = (d: string | undefined, check?: StringCheck): Field =>
  (d === undefined ? { kind: 'string', optional: true, check } : { kind: 'string', default: d, check });
const list = (d: readonly string[], check?: StringCheck): Field => ({ kind: 'list', default: d, check });
const optlist = (check?: StringCheck): Field => ({ kind: 'list', default: [], check, optional: true });
const objlist = (required: readonly string[], fields: Record<string, Field>): Field =>
  ({ kind: 'objectlist', item: { kind: 'object', fields }, required });
/** health.http[].uri: an absolute http(s) URL (a path and query are allowed, unlike upstreams). */
const checkHealthURI: StringCheck = (s) => {
  try { if (/^https?:$/.test(new URL(s).protocol)) return undefined; } catch { /* below */ }
  return { wanted: 'an http:// or https:// URL' };
};

/** urls.prefix: a path ("/registry"), no query or fragment; "" or "/" for none. */
const checkPrefix: StringCheck = (s) =>
  (s === '' || /^\/[A-Za-z0-9._~!$&'()*+,;=:@%\/-]*$/.test(s) ? undefined : { wanted: 'a path like /registry' });

/** An access-rule principal: `*`, `anonymous`, `@group` or a user name (no whitespace or ':', as htpasswd). */
const checkPrincipal: StringCheck = (s) => {
  if (s === '' || /[\s:\x00-\x1f\x7f]/.test(s)) return { wanted: '`*` (any authenticated user), `anonymous`, `@group` or a user name' };
  return s.startsWith('@') ? checkGroupName(s.slice(1)) : undefined;
};
const checkGroupName: StringCheck = (s) =>
  (/^[A-Za-z0-9._-]+$/.test(s) ? undefined : { wanted: 'a group name of letters, digits, ".", "_", "-"' });
const checkRepositoryPattern: StringCheck = (s) => {
  const bad = patternProblem(s);
  return bad ? { wanted: PATTERN_HINT, note: ` (${bad})` } : undefined;
};

const checkAction: StringCheck = (s) =>
  (['push', 'pull', 'mount', 'delete'].includes(s) ? undefined : { wanted: 'one of push, pull, mount, delete' });

/** JWS algorithms Distribution's auth.token.signingalgorithms takes (the same list as auth/token/keys.ts). */
export const TOKEN_SIGNING_ALGORITHMS = [
  'EdDSA', 'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512',
] as const;

const checkSigningAlgorithm: StringCheck = (s) =>
  ((TOKEN_SIGNING_ALGORITHMS as readonly string[]).includes(s) ? undefined : { wanted: `one of ${TOKEN_SIGNING_ALGORITHMS.join(', ')}` });

/** auth.token.realm, auth.issuer.realm: an absolute http(s) URL (a path is expected: the token endpoint). */
const checkTokenURL: StringCheck = (s) => {
  try { if (/^https?:$/.test(new URL(s).protocol)) return undefined; } catch { /* below */ }
  return { wanted: 'an http:// or https:// URL (the token endpoint)' };
};

/** The driver when registry.storage names none (exactly one of the registered drivers' keys may appear). */
export const DEFAULT_STORAGE_DRIVER = 'filesystem';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** The nginx recipe's pattern (same as gateway/user-agent.ts DEFAULT_REJECT_UA; a unit test keeps them equal). */
export const DEFAULT_REJECT_USER_AGENTS = '^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$';

/** Response headers berth (or Node) sets itself: `headers:` may not replace them. */
export const RESERVED_RESPONSE_HEADERS = [
  'connection', 'content-length', 'content-type', 'content-range', 'content-encoding', 'transfer-encoding', 'keep-alive',
  'trailer', 'upgrade', 'location', 'range', 'www-authenticate', 'docker-content-digest', 'docker-upload-uuid',
  'docker-distribution-api-version', 'x-request-id', 'etag', 'link', 'oci-subject', 'oci-filters-applied',
] as const;

/** registry.storage besides the driver sections (driverSections adds one per registered driver). */
const STORAGE_FIELDS: Record<string, Field> = {
  delete: obj({ enabled: bool(false) }),
  maintenance: obj({
    uploadpurging: obj({
      enabled: bool(true), age: duration('168h'), interval: duration('24h'), dryrun: bool(false),
    }),
    uploadlimits: obj({ peruser: int(1000, 0), peraddress: int(1000, 0) }),   // berth
    readonly: obj({ enabled: bool(false) }),
  }),
  redirect: obj({ disable: bool(false) }),
  cache: obj({ blobdescriptor: oneOf(['inmemory', 'redis'], 'inmemory'), blobdescriptorsize: int(10000, 1) }, true),
};

/** The section of driver `name` under registry.storage: an optional mapping of its parameters (from the
 *  driver's own table: kinds, defaults, bounds; e.g. filesystem's rootdirectory defaults to ./data). */
export function driverSection(name: string): Field & { kind: 'object' } {
  const specs = driverParameters(name) ?? [];
  return { kind: 'object', optional: true, fields: Object.fromEntries(specs.map((spec) => [spec.name, { kind: 'parameter', spec }])) };
}

/** One section per registered storage driver, in driverNames() order. */
function driverSections(): Record<string, Field> {
  return Object.fromEntries(driverNames().map((name) => {
    if (Object.hasOwn(STORAGE_FIELDS, name)) throw new Error(`storage driver "${name}" collides with registry.storage.${name}`);
    return [name, driverSection(name)];
  }));
}

export const SCHEMA: Field = obj({
  listen: hostport('0.0.0.0:5000'),
  tls: obj({
    certificate: path('certs/domain.crt'),
    key: path('certs/domain.key'),
    minimumtls: oneOf(['tls1.2', 'tls1.3'], 'tls1.2'),
    ciphersuites: list([], checkCipherSuite),
    clientcas: list([]),                              // paths: load.ts resolves them against the file's directory
    clientauth: str('', checkClientAuth),             // '' (unset): by clientcas (load.ts)
  }, true),
  auth: obj({
    htpasswd: obj({ realm: str('Registry Realm', checkRealm), path: path('auth/htpasswd'), cache: bool(true) }, true),
    access: obj({
      groups: { kind: 'lists', check: checkPrincipal, checkName: checkGroupName },
      groupsfile: str(undefined),                    // load.ts resolves it against the file's directory
      admins: list([], checkPrincipal),
      rules: objlist(['repositories'], {
        repositories: list([], checkRepositoryPattern),
        pull: optlist(checkPrincipal), push: optlist(checkPrincipal), delete: optlist(checkPrincipal),
      }),
    }, true),
    token: obj({
      realm: str(undefined, checkTokenURL), service: str(undefined, checkRealm), issuer: str(undefined, checkRealm),
      rootcertbundle: str(undefined), jwks: str(undefined),   // paths: load.ts resolves them against the file's directory
      signingalgorithms: list([], checkSigningAlgorithm), autoredirect: bool(false), autoredirectpath: str('/auth/token', checkPrefix),
    }, true),
    issuer: obj({
      path: str('/auth/token', checkPrefix), realm: str('', (s) => (s === '' ? undefined : checkTokenURL(s))),
      service: str(undefined, checkRealm), issuer: str(undefined, checkRealm),
      key: path('auth/token.key'), certificate: str(undefined),   // certificate: load.ts resolves it
      expiration: duration('5m', true), refreshexpiration: duration('720h'),
    }, true),
  }, true),
  headers: { kind: 'headers', reserved: RESERVED_RESPONSE_HEADERS },
  upstreams: obj({
    v2: str('embedded', checkV2Upstream),
    v1: str(undefined, checkUpstreamURL),
    v1auth: oneOf(['strip', 'forward'], 'strip'),
  }),
  clients: obj({ rejectuseragents: str(DEFAULT_REJECT_USER_AGENTS, checkRegExp) }),
  urls: obj({ prefix: str('', checkPrefix), host: str('', checkUpstreamURL), relative: bool(true) }),
  proxy: obj({
    readtimeout: duration('900s', true),
    headertimeout: duration('20s', true),
    maxheadersize: int(16384, 1024, 1 << 20),
    maxconnections: int(2048, 1, 1 << 20),
    maxconnectionsperaddress: int(256, 1, 1 << 20),
    bodytimeout: duration('20s', true),
    bodyminrate: int(500, 0),
    trustedproxies: list([], checkCidr),
    draintimeout: duration('10s'),
  }),
  registry: obj({
    storage: { kind: 'object', fields: STORAGE_FIELDS, more: driverSections },
    notifications: obj({
      endpoints: objlist(['name', 'url'], {
        name: str(undefined), url: str(undefined, checkHealthURI), headers: { kind: 'headers' },
        timeout: duration('1s', true), threshold: int(10, 1), backoff: duration('1s', true),
        disabled: bool(false), ignoredmediatypes: list([]),
        ignore: obj({ mediatypes: list([]), actions: list([], checkAction) }),
        signingkey: str(undefined),                // berth: HMAC-SHA256 key → X-Berth-Signature
      }),
      events: obj({ includereferences: bool(false) }),
      journaldirectory: str(undefined),            // berth; load.ts resolves it against the file's directory
      journalmaxsize: int(64 << 20, 1024),         // berth: bytes; the oldest events are dropped past it
      journalmaxage: duration('168h', true),       // berth: undelivered events older than this are dropped
    }, true),
    redis: obj({
      addr: hostport('localhost:6379'),
      password: str(undefined),
      db: int(0, 0),
      dialtimeout: duration('1s', true),
      readtimeout: duration('500ms', true),
      writetimeout: duration('500ms', true),
      pool: obj({ maxidle: int(16, 0), maxactive: int(64, 0), idletimeout: duration('300s') }),
      keyprefix: str(undefined),                   // berth; absent: derived from the storage identity
    }, true),
    health: obj({
      storagedriver: obj({ enabled: bool(false), interval: duration('10s', true), threshold: int(3, 0) }),
      file: objlist(['file'], { file: path(''), interval: duration('10s', true) }),
      http: objlist(['uri'], {
        uri: str('', checkHealthURI), headers: { kind: 'headers' }, statuscode: int(200, 100, 599),
        timeout: duration('1s', true), interval: duration('10s', true), threshold: int(0, 0),
      }),
      tcp: objlist(['addr'], { addr: hostport(''), timeout: duration('1s', true), interval: duration('10s', true), threshold: int(0, 0) }),
    }),
    http: obj({
      debug: obj({
        addr: hostport('localhost:5001'),
        prometheus: obj({ enabled: bool(true), path: str('/metrics') }),
      }, true),
    }),
  }),
  log: obj({
    level: oneOf(LOG_LEVELS, 'info'),
    formatter: oneOf(['json', 'logstash', 'text'], 'json'),
    fields: { kind: 'scalars' },
    accesslog: obj({ disabled: bool(false) }),
  }),
});

// Environment overrides (REGISTRY_*, BERTH_LOG_LEVEL) are resolved in env.ts against Distribution's own
// config shape (distribution-schema.ts) and routed by the mapping rules (distribution.ts).
