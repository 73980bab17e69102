// The shape of CNCF Distribution's config.yml (configuration/configuration.go, v2.8 and v3 keys), used
// only to resolve REGISTRY_* variables the way Distribution's parser does (configuration/parser.go):
// struct fields match by Go field name in upper case, map keys case-insensitively, list items by index.
// What berth does with each key is distribution.ts; this file holds no rules, no I/O and no YAML.

/** A node of Distribution's Configuration type. `go`: the Go field name where it differs from the YAML key. */
export type DType =
  | { t: 'struct'; fields: Record<string, { go?: string; type: DType }> }
  | { t: 'map'; value: DType }    // map[string]T: keys matched case-insensitively, new keys lower-cased
  | { t: 'list'; item: DType }    // []T: REGISTRY_…_<index>_…
  | { t: 'scalar' }
  | { t: 'any' };                 // interface{}: an implicit map when a path goes deeper

const S: DType = { t: 'scalar' };
const ANY: DType = { t: 'any' };
const map = (value: DType): DType => ({ t: 'map', value });
const list = (item: DType): DType => ({ t: 'list', item });
const struct = (fields: Record<string, DType | [go: string, type: DType]>): DType => ({
  t: 'struct',
  fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, Array.isArray(v) ? { go: v[0], type: v[1] } : { type: v }])),
});
const scalars = (...keys: string[]): Record<string, DType> => Object.fromEntries(keys.map((k) => [k, S]));

const HEADERS = map(list(S));          // http.Header
const PARAMETERS = map(ANY);           // configuration.Parameters
/** Storage and Auth: map[string]Parameters whose YAML may also be a bare type name ("filesystem", "htpasswd"). */
export const TYPED_SECTIONS: DType = map(PARAMETERS);

export const DISTRIBUTION_CONFIG: DType = struct({
  version: S,
  log: struct({
    accesslog: struct({ disabled: S }),
    ...scalars('level', 'formatter', 'reportcaller'),
    fields: map(ANY),
    hooks: list(struct({
      ...scalars('disabled', 'type'), levels: list(S),
      options: ['MAILOPTIONS', struct({
        smtp: struct(scalars('addr', 'username', 'password', 'insecure')), from: S, to: list(S),
      })],
    })),
  }),
  loglevel: S,
  storage: TYPED_SECTIONS,
  auth: TYPED_SECTIONS,
  middleware: map(list(struct({ ...scalars('name', 'disabled'), options: PARAMETERS }))),
  reporting: struct({
    bugsnag: struct(scalars('apikey', 'releasestage', 'endpoint')),
    newrelic: struct(scalars('licensekey', 'name', 'verbose')),
  }),
  http: struct({
    ...scalars('addr', 'net', 'host', 'prefix', 'secret', 'relativeurls', 'draintimeout'),
    tls: struct({
      ...scalars('certificate', 'key', 'clientauth', 'minimumtls'),
      clientcas: list(S), ciphersuites: list(S),
      letsencrypt: struct({ ...scalars('cachefile', 'email', 'directoryurl'), hosts: list(S) }),
    }),
    headers: HEADERS,
    debug: struct({ addr: S, prometheus: struct(scalars('enabled', 'path')) }),
    http2: struct({ disabled: S }),
    h2c: struct({ enabled: S }),
  }),
  notifications: struct({
    events: ['EVENTCONFIG', struct({ includereferences: S })],
    endpoints: list(struct({
      ...scalars('name', 'disabled', 'url', 'timeout', 'threshold', 'backoff'),
      headers: HEADERS, ignoredmediatypes: list(S),
      ignore: struct({ mediatypes: list(S), actions: list(S) }),
      signingkey: S,                                    // berth
    })),
    journaldirectory: S,                                // berth
  }),
  redis: struct({
    ...scalars('addr', 'password', 'db', 'dialtimeout', 'readtimeout', 'writetimeout'),
    pool: struct(scalars('maxidle', 'maxactive', 'idletimeout')),
    tls: struct({ ...scalars('enabled', 'certificate', 'key'), clientcas: list(S) }),
    addrs: list(S), ...scalars('maxidleconns', 'poolsize', 'connmaxidletime'),   // v3 (go-redis UniversalOptions)
  }),
  health: struct({
    file: ['FILECHECKERS', list(struct(scalars('interval', 'file', 'threshold')))],
    http: ['HTTPCHECKERS', list(struct({ ...scalars('timeout', 'statuscode', 'interval', 'uri', 'threshold'), headers: HEADERS }))],
    tcp: ['TCPCHECKERS', list(struct(scalars('timeout', 'interval', 'addr', 'threshold')))],
    storagedriver: struct(scalars('enabled', 'interval', 'threshold')),
  }),
  catalog: struct({ maxentries: S }),
  proxy: struct({
    ...scalars('remoteurl', 'username', 'password', 'ttl', 'remotenamespace'),
    exec: struct(scalars('command', 'lifetime')),
  }),
  compatibility: struct({ schema1: struct({ signingkeyfile: ['TRUSTKEY', S], enabled: S }) }),
  validation: struct({
    ...scalars('enabled', 'disabled'),
    manifests: struct({
      urls: struct({ allow: list(S), deny: list(S) }),
      indexes: struct({ platforms: S, platformlist: list(struct(scalars('architecture', 'os'))) }),
    }),
  }),
  policy: struct({ repository: struct({ classes: list(S) }) }),
  // berth's own section (registry:2 ignores unknown top-level keys): REGISTRY_BERTH_PROXY_READTIMEOUT and the like
  berth: struct({
    upstreams: struct(scalars('v2', 'v1', 'v1auth')),
    clients: struct(scalars('rejectuseragents')),
    proxy: struct({
      ...scalars('readtimeout', 'headertimeout', 'maxheadersize', 'maxconnections', 'maxconnectionsperaddress',
        'bodytimeout', 'bodyminrate', 'draintimeout'),
      trustedproxies: list(S),
    }),
  }),
});

/**
 * The YAML key of a struct field named by one upper-case env segment: Distribution matches the Go
 * field name (EVENTCONFIG, FILECHECKERS…); berth also accepts the YAML key (EVENTS, FILE…).
 */
export function structField(type: DType & { t: 'struct' }, seg: string): { key: string; type: DType } | undefined {
  for (const [key, f] of Object.entries(type.fields)) {
    if ((f.go ?? key).toUpperCase() === seg || key.toUpperCase() === seg) return { key, type: f.type };
  }
  return undefined;
}
