// Config types and defaults in one place. load.ts validates raw YAML against SCHEMA (a declarative
// table: key → kind, default, enum/range), applies the defaults, resolves paths and deep-freezes.
// The `registry` section uses Distribution's config.yml keys verbatim (lowercase). Durations are
// parsed to milliseconds; paths are absolute after loading. No I/O and no YAML parsing here.

export interface UploadPurgingConfig {
  enabled: boolean;       // default true (as in distribution)
  age: number;            // ms, default 168h
  interval: number;       // ms, default 24h
  dryrun: boolean;        // default false
}

export interface StorageConfig {
  /** Exactly one driver key is present in YAML (none → filesystem); `driver` names it after loading. */
  driver: 'filesystem' | 'inmemory';
  filesystem?: { rootdirectory: string; maxthreads: number };   // default rootdirectory ./data (next to the config file)
  inmemory?: Record<string, never>;
  delete: { enabled: boolean };                                 // default false
  maintenance: {
    uploadpurging: UploadPurgingConfig;
    readonly: { enabled: boolean };                             // default false
  };
  redirect: { disable: boolean };                               // default false
}

export interface RegistryConfig {
  storage: StorageConfig;
}

export interface LogConfig {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';   // default info
}

export interface Config {
  /** Absolute path of the file this came from (for messages); '' when built in code. */
  source: string;
  listen: { host: string; port: number };   // from "host:port", default 0.0.0.0:5000
  upstreams: { v2: 'embedded' | string; v1?: string };
  registry: RegistryConfig;
  log: LogConfig;
}

// ---------------------------------------------------------------------------------------------
// The declarative schema. Adding a section = adding rows here (and its type above); load.ts
// does not change unless a new *kind* of value appears.

export type Field =
  /** A mapping. `optional`: absent stays absent (no defaults), e.g. storage driver sections. */
  | { kind: 'object'; fields: Record<string, Field>; optional?: boolean }
  | { kind: 'boolean'; default: boolean }
  | { kind: 'integer'; default: number; min?: number; max?: number }
  /** Go duration syntax ("168h", "1h30m", "500ms") → milliseconds. */
  | { kind: 'duration'; default: string }
  | { kind: 'enum'; values: readonly string[]; default: string }
  /** A filesystem path; relative ones resolve against the config file's directory. */
  | { kind: 'path'; default: string }
  /** "host:port" with host a name, IPv4 or [IPv6]; ":port" means all interfaces. → { host, port } */
  | { kind: 'hostport'; default: string };

const obj = (fields: Record<string, Field>, optional = false): Field => ({ kind: 'object', fields, optional });
const bool = (d: boolean): Field => ({ kind: 'boolean', default: d });
const int = (d: number, min?: number, max?: number): Field => ({ kind: 'integer', default: d, min, max });
const duration = (d: string): Field => ({ kind: 'duration', default: d });
const oneOf = (values: readonly string[], d: string): Field => ({ kind: 'enum', values, default: d });
const path = (d: string): Field => ({ kind: 'path', default: d });
const hostport = (d: string): Field => ({ kind: 'hostport', default: d });

/** Storage driver keys: exactly one may appear under registry.storage (none → filesystem). */
export const STORAGE_DRIVERS = ['filesystem', 'inmemory'] as const;
export const DEFAULT_STORAGE_DRIVER = 'filesystem';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const SCHEMA: Field = obj({
  listen: hostport('0.0.0.0:5000'),
  // TODO(config): a proxied upstream URL (sidecar mode) and v1 come with the upstream proxy issue.
  upstreams: obj({ v2: oneOf(['embedded'], 'embedded') }),
  registry: obj({
    storage: obj({
      filesystem: obj({ rootdirectory: path('./data'), maxthreads: int(100, 25) }, true),
      inmemory: obj({}, true),
      delete: obj({ enabled: bool(false) }),
      maintenance: obj({
        uploadpurging: obj({
          enabled: bool(true), age: duration('168h'), interval: duration('24h'), dryrun: bool(false),
        }),
        readonly: obj({ enabled: bool(false) }),
      }),
      redirect: obj({ disable: bool(false) }),
    }),
  }),
  log: obj({ level: oneOf(LOG_LEVELS, 'info') }),
});

/**
 * Environment overrides, applied to the YAML before validation.
 * - `REGISTRY_<PATH>` sets a key under `registry:` (Distribution's scheme): the path's keys in upper
 *   case joined by `_`, e.g. REGISTRY_STORAGE_DELETE_ENABLED → registry.storage.delete.enabled.
 * - ENV_ALIASES below name the few others.
 * Values are parsed as YAML scalars ("true" → boolean, "168h" → string).
 */
export const ENV_PREFIX = 'REGISTRY_';
export const ENV_ALIASES: Record<string, readonly string[]> = {   // applied in this order: later wins
  REGISTRY_LOG_LEVEL: ['log', 'level'],   // Distribution's name; berth has one top-level log section
  BERTH_LOG_LEVEL: ['log', 'level'],
};
