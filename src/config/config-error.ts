// ConfigError: every problem found in a config (file or environment), with positions, in one error.
// Callers check `code`, not the message. It formats; it does not decide what is a problem.

export interface ConfigProblem {
  /** 1-based; 0 when the problem has no position in the file (environment, unreadable file). */
  line: number;
  col: number;
  /** Dotted config path, e.g. "registry.storage.delete.enabled"; '' for the whole file. */
  path: string;
  message: string;
  /** Where a position-less value came from, e.g. "env REGISTRY_STORAGE_DELETE_ENABLED". */
  origin?: string;
}

export class ConfigError extends Error {
  readonly code = 'BERTH_CONFIG_INVALID';
  constructor(readonly file: string, readonly problems: readonly ConfigProblem[]) {
    super(formatProblems(file, problems));
    this.name = 'ConfigError';
  }
}

/** One line per problem: `file:line:col  key.path  message` (env problems: `env NAME  key.path  message`). */
export function formatProblems(file: string, problems: readonly ConfigProblem[]): string {
  return problems.map((p) => {
    const where = p.line > 0 ? `${file}:${p.line}:${p.col}` : (p.origin ?? file);
    return [where, p.path, p.message].filter(Boolean).join('  ');
  }).join('\n');
}
