// Config types and defaults in one place. load.ts validates raw YAML against these, applies the
// defaults, resolves paths and deep-freezes. The `registry` section uses Distribution's config.yml
// keys verbatim (lowercase). Durations are parsed to milliseconds; paths are absolute after loading.

export interface UploadPurgingConfig {
  enabled: boolean;       // default true (as in distribution)
  age: number;            // ms, default 168h
  interval: number;       // ms, default 24h
  dryrun: boolean;        // default false
}

export interface StorageConfig {
  /** Exactly one driver key is present in YAML; `driver` names it after loading. */
  driver: 'filesystem' | 'inmemory';
  filesystem?: { rootdirectory: string; maxthreads: number };   // default rootdirectory /var/lib/registry
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
