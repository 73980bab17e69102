// Which config file a command reads when none is named, as registry:2 finds its own: `--config FILE` (or
// check-config's FILE), else $REGISTRY_CONFIGURATION_PATH, else /etc/docker/registry/config.yml when it exists,
// else ./gateway.yml. Pure: the environment and the exists() probe are injected (tests
// never touch /etc); it reads no file and says why it chose one, for the start log.
/** Distribution's variable naming its config file (the registry:2 image's entrypoint reads it). */
export const CONFIG_PATH_ENV = 'REGISTRY_CONFIGURATION_PATH';
/** Where the registry:2 image keeps its config.yml (mounted there by compose files and Helm charts). */
export const DISTRIBUTION_CONFIG = '/etc/docker/registry/config.yml';
/** berth's own default, relative to the working directory. */
export const DEFAULT_CONFIG = 'gateway.yml';

export type ConfigSource = 'argument' | 'env' | 'distribution-default' | 'default';

export interface ConfigLocation {
  /** The file to read, as given (relative to the working directory when not absolute); it may not exist:
   *  loadConfig then says "file not found". */
  file: string;
  source: ConfigSource;
  /** Why this file, for the log: "from --config", "from REGISTRY_CONFIGURATION_PATH", … */
  reason: string;
}

export interface FindConfigOptions {
  /** The file named on the command line, if any: it wins. */
  argument?: string;
  env: Record<string, string | undefined>;
  /** Whether a path exists (existsSync in the CLI; a table in the tests). */
  exists(path: string): boolean;
}

/**
 * The config file to read. An explicit file (argument or REGISTRY_CONFIGURATION_PATH, when non-empty) is taken
 * as given, existing or not, so a typo fails loudly instead of falling through to another file; only the
 * Distribution default is probed, and ./gateway.yml is the last resort (loadConfig reports it missing).
 */
export function findConfig(o: FindConfigOptions): ConfigLocation {
  if (o.argument !== undefined) return { file: o.argument, source: 'argument', reason: 'from the command line' };
  const fromEnv = o.env[CONFIG_PATH_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { file: fromEnv, source: 'env', reason: `from ${CONFIG_PATH_ENV}` };
  if (o.exists(DISTRIBUTION_CONFIG)) {
    return { file: DISTRIBUTION_CONFIG, source: 'distribution-default', reason: `default: ${DISTRIBUTION_CONFIG} exists (registry:2's location)` };
  }
  return {
    file: DEFAULT_CONFIG, source: 'default',
    reason: `default: no --config, no ${CONFIG_PATH_ENV}, no ${DISTRIBUTION_CONFIG}`,
  };
}
