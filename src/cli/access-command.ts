// `berth access check USER REPOSITORY ACTION [--config FILE]`: loads the config as serve does and prints the
// decision of the access rules with the rule that made it; and the access part of check-config/serve's preflight
// (groups file readable, groups known, unreachable rules, rules granting nothing, users htpasswd does not know).
import { parseArgs } from 'node:util';
import { ConfigError, formatProblems, type ConfigProblem } from '../config/config-error.js';
import { loadConfig, problemAt } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { HtpasswdFile } from '../auth/htpasswd.js';
import { buildAccess, type BuiltAccess } from '../auth/rules-access.js';
import type { Action } from '../auth/policy.js';
import { silentLogger } from '../log/logger.js';

const USAGE = `Usage: berth access check USER REPOSITORY ACTION [--config FILE]
  Prints whether USER may do ACTION (pull, push or delete) on REPOSITORY under the access rules of FILE
  (default ./gateway.yml), and the rule that decided. USER "anonymous" is a request without credentials.
  Exit 0 allowed, 1 denied (or an invalid config), 2 usage.`;

interface Io { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }

export async function runAccessCommand(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    io.stderr.write(`berth access: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (parsed.values.help) { io.stdout.write(`${USAGE}\n`); return 0; }
  const [sub, user, repository, action, ...extra] = parsed.positionals;
  const bad = sub !== 'check' ? `unknown subcommand: ${sub ?? '(none)'}`
    : repository === undefined || action === undefined ? 'check takes USER REPOSITORY ACTION'
      : extra.length ? `unexpected argument: ${extra[0]}`
        : !['pull', 'push', 'delete'].includes(action) ? `ACTION must be pull, push or delete, found "${action}"` : undefined;
  if (bad) { io.stderr.write(`berth access: ${bad}\n\n${USAGE}\n`); return 2; }
  const file = parsed.values.config ?? 'gateway.yml';
  let config: Config;
  try {
    config = await loadConfig(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`berth: invalid configuration\n${err.message}\n`);
    return 1;
  }
  const { built, problems, users } = await accessPreflight(config);
  if (problems.length) {
    io.stderr.write(`berth: invalid configuration\n${formatProblems(file, problems)}\n`);
    return 1;
  }
  const who = user === 'anonymous' ? null : user!;
  const authenticator = config.auth?.htpasswd !== undefined;
  let allowed: boolean;
  let rule: string;
  if (built.policy.unrestricted && !authenticator) {
    allowed = true;   // no auth at all: everyone may do everything (or a client certificate's user: the same)
    rule = 'no auth and no rules (everyone)';
  } else {
    ({ allowed, rule } = built.policy.decide(who, repository!, action as Action));
  }
  const name = who === null ? 'anonymous' : who;
  io.stdout.write(`${allowed ? 'allowed' : 'denied'}: ${name} ${action} ${repository} (${rule})\n`);
  if (!allowed && who === null && authenticator) io.stdout.write('  (an anonymous request is answered 401: log in and try again)\n');
  if (who !== null && users && !users.has(who)) io.stdout.write(`  (note: ${who} is not in the htpasswd file: serve answers its requests 401)\n`);
  return allowed ? 0 : 1;
}

/**
 * The access section checked as serve builds it: `problems` stop serve and fail check-config; `warnings` are
 * printed by check-config (serve logs them). The htpasswd users, when the file is readable, name unknown users.
 */
export async function accessPreflight(config: Config): Promise<{
  built: BuiltAccess; problems: ConfigProblem[]; warnings: ConfigProblem[];
  /** The htpasswd users, when there is a readable file (and an access section). */
  users?: ReadonlySet<string>;
}> {
  let users: ReadonlySet<string> | undefined;
  const htpasswd = config.auth?.htpasswd;
  if (htpasswd && config.auth?.access) {
    try {
      const file = await HtpasswdFile.load(htpasswd.path, { log: silentLogger() });
      users = new Set(file.latest.users.keys());
      file.close();
    } catch { /* reported by the htpasswd check */ }
  }
  const built = await buildAccess(config.auth?.access, { users });
  return {
    built, users,
    problems: built.errors.map((p) => near(config, p.path, p.message)), warnings: built.warnings.map((p) => near(config, p.path, p.message)),
  };
}

/** problemAt at the nearest key with a known position (auth.access.rules.2.pull.0 → auth.access.rules.2). */
function near(config: Config, path: string, message: string): ConfigProblem {
  const parts = path.split('.');
  for (let k = parts.length; k > 0; k--) {
    const p = problemAt(config, parts.slice(0, k).join('.'), message);
    if (p.line > 0 || p.origin) return { ...p, path };
  }
  return { line: 0, col: 0, path, message };
}
