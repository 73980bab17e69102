// Access rules on top of an authenticator (htpasswd Basic auth, or none): authenticates with the inner controller,
// then asks the AccessPolicy for every item of the request's access list (http/v2-routes.ts). It never writes a
// response: a refusal is a ChallengeError (no credentials: 401, log in and try again) or a DeniedError
// (authenticated, or no authenticator to log in with: 403 DENIED). Also builds the policy from auth.access
// (reading the groups file). Knows no config types: it takes its own options.
import type { IncomingMessage } from 'node:http';
import { v2Request } from '../http/v2-routes.js';
import type { Logger } from '../log/logger.js';
import {
  ChallengeError, DeniedError, type Access, type AccessController, type ClientFacts, type Grant,
} from './access.js';
import { GroupsFileError, loadGroupsFile } from './groups-file.js';
import type { AccessPolicy, Action, Decision } from './policy.js';
import { allowAll } from './policy.js';
import { checkAccessRules, RulesPolicy, type AccessProblem, type AccessRulesOptions } from './rules.js';

export interface AccessSection extends AccessRulesOptions {
  /** Absolute path of a YAML file of group → [users], merged with `groups`. */
  groupsfile?: string;
}

/** `Authorization` absent or empty, or Basic with an empty user and password (what containers/image clients send
 *  after a Basic challenge when they have no credentials): an anonymous request. */
export function isAnonymousRequest(header: string | undefined): boolean {
  if (header === undefined || header.trim() === '') return true;
  const m = /^basic[ \t]+([A-Za-z0-9+/]*={0,2})[ \t]*$/i.exec(header.trim());
  return m !== null && Buffer.from(m[1]!, 'base64').toString('latin1') === ':';
}

export class RulesAccessController implements AccessController {
  /**
   * `inner`: the authenticator (its challenge is `challenge`); undefined when there is none (no auth.htpasswd):
   * every request is anonymous then, or the client certificate's user.
   */
  constructor(
    readonly policy: AccessPolicy, private readonly inner?: AccessController, private readonly challenge?: string,
    private readonly log?: Logger,
  ) {}

  async reload(): Promise<void> {
    if (this.policy instanceof ReloadablePolicy) await reloadPolicy(this.policy, this.log);
    await this.inner?.reload?.();
  }

  async authorize(req: IncomingMessage, access: Access[], client?: ClientFacts): Promise<Grant> {
    let user: string | null;
    if (!this.inner) user = client?.certUser ?? null;
    else if (isAnonymousRequest(req.headers.authorization)) user = null;
    else user = (await this.inner.authorize(req, access, client)).user;   // wrong credentials: its challenge
    // The base check tells clients how to log in: with an authenticator, anonymous requests get its challenge
    // (clients that saw a 200 there would never send credentials, not even for a push).
    if (access.length === 0) {
      if (user === null && this.inner) throw this.challengeFor();
      return { user };
    }
    const route = v2Request(req).route;
    const mountFrom = route?.kind === 'uploadStart' && route.mount && req.method === 'POST' ? access.length - 1 : -1;
    const rules = new Set<string>();
    let dropMount = false;
    for (const [i, item] of access.entries()) {
      if (item.type === 'registry') {
        // The catalog: anyone who may pull something may ask; the list holds only what they may pull.
        if (user !== null || !this.inner || this.policy.anonymous) { rules.add('catalog (filtered by pull)'); continue; }
        throw this.challengeFor();
      }
      for (const action of item.actions) {
        const d: Decision = this.policy.decide(user, item.name, action);
        if (d.allowed) { rules.add(d.rule); continue; }
        if (i === mountFrom) { dropMount = true; rules.add(`mount refused: ${d.rule}`); continue; }
        if (user === null && this.inner) throw this.challengeFor(d.rule);
        throw new DeniedError(user, item.name, action, d.rule);
      }
    }
    const catalog = access.some((a) => a.type === 'registry');
    return { user, rule: [...rules].join(', '), ...(dropMount ? { dropMount } : {}), ...(catalog ? { pullable: this.policy.pullable(user) } : {}) };
  }

  close(): void {
    this.inner?.close();
  }

  private challengeFor(rule?: string): ChallengeError {
    return new ChallengeError(this.challenge ?? 'Basic realm="Registry Realm"', 'missing', undefined, rule);
  }
}

/** The policy of an auth.access section with its groups file read, and what check-config reports about it. */
export interface BuiltAccess {
  policy: AccessPolicy;
  errors: AccessProblem[];
  warnings: AccessProblem[];
}

/**
 * Reads the groups file (a problem with it is an error at `auth.access.groupsfile`), merges the groups (a group
 * both inline and in the file is an error) and checks the rules. No section, or no rules: allowAll.
 * `users`: the htpasswd users, when known (unknown names are warnings).
 */
export async function buildAccess(section: AccessSection | undefined, known?: { users?: ReadonlySet<string> }): Promise<BuiltAccess> {
  if (!section) return { policy: allowAll, errors: [], warnings: [] };
  const errors: AccessProblem[] = [];
  const groups: Record<string, readonly string[]> = { ...section.groups };
  if (section.groupsfile !== undefined) {
    try {
      for (const [g, members] of Object.entries(await loadGroupsFile(section.groupsfile))) {
        if (Object.hasOwn(groups, g)) errors.push({ path: 'auth.access.groupsfile', message: `group "${g}" is also defined in auth.access.groups: define it once` });
        else groups[g] = members;
      }
    } catch (err) {
      if (!(err instanceof GroupsFileError)) throw err;
      // Alone: without the file every @group would be reported unknown as well.
      return { policy: allowAll, errors: [{ path: 'auth.access.groupsfile', message: err.message }], warnings: [] };
    }
  }
  const merged: AccessRulesOptions = { groups, admins: section.admins ?? [], rules: section.rules ?? [] };
  const checked = checkAccessRules(merged, known);
  errors.push(...checked.errors);
  const warnings = checked.warnings;
  if ((section.rules ?? []).length === 0) {
    if ((section.admins ?? []).length > 0 || Object.keys(groups).length > 0) {
      warnings.push({ path: 'auth.access.rules', message: 'no rules: every authenticated user may do everything (groups and admins have no effect)' });
    }
    return { policy: allowAll, errors, warnings };
  }
  return { policy: new RulesPolicy(merged), errors, warnings };
}

/**
 * The policy in force, re-built on reload (SIGHUP) so a changed groups file takes effect without a restart (the
 * rules themselves are config and change with a restart). A groups file that fails to load or check on reload
 * keeps the policy in force: `reload` resolves with the problems for the caller to log, never half-applies.
 */
export class ReloadablePolicy implements AccessPolicy {
  constructor(private current: AccessPolicy, private readonly section: AccessSection | undefined) {}

  get unrestricted(): boolean { return this.current.unrestricted; }
  get anonymous(): boolean { return this.current.anonymous; }
  decide(user: string | null, repository: string, action: Action): Decision { return this.current.decide(user, repository, action); }
  pullable(user: string | null): (repository: string) => boolean { return this.current.pullable(user); }

  /** Re-reads the groups file; resolves with its errors (nothing changed) or warnings (applied). */
  async reload(): Promise<{ applied: boolean; errors: AccessProblem[]; warnings: AccessProblem[] }> {
    if (this.section?.groupsfile === undefined) return { applied: false, errors: [], warnings: [] };
    const built = await buildAccess(this.section);
    if (built.errors.length) return { applied: false, errors: built.errors, warnings: built.warnings };
    // No rules stays no rules and rules stay rules (the section did not change), so callers that chose a
    // controller by `unrestricted` at start stay right.
    this.current = built.policy;
    return { applied: true, errors: [], warnings: built.warnings };
  }
}

/** Reloads `policy` and logs the outcome (the groups file's problems keep the rules in force). Never rejects. */
export async function reloadPolicy(policy: ReloadablePolicy, log: Logger | undefined): Promise<void> {
  try {
    const r = await policy.reload();
    for (const e of r.errors) log?.error({ key: e.path }, `access rules not reloaded, keeping the current ones: ${e.message}`);
    for (const w of r.warnings) log?.warn({ key: w.path }, w.message);
    if (r.applied) log?.info('access rules reloaded (groups file)');
  } catch (err) {
    log?.error({ err }, 'access rules not reloaded, keeping the current ones');
  }
}

/** Thrown at start when the access section has errors (the CLI's preflight reports them first, by key). */
export class AccessConfigError extends Error {
  readonly code = 'BERTH_ACCESS_CONFIG';
  constructor(readonly problems: readonly AccessProblem[]) {
    super(`auth.access: ${problems.map((p) => `${p.path}  ${p.message}`).join('; ')}`);
    this.name = 'AccessConfigError';
  }
}
