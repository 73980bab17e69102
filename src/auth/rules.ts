// The access rules of gateway.yml (auth.access): groups, admins and per-repository rules compiled into an
// AccessPolicy, plus the checks check-config reports (unknown groups, unreachable rules, rules granting nothing,
// users the htpasswd file does not know). Pure: no I/O (the groups file is read by groups-file.ts), no HTTP.
//
// A decision for (user, repository, action):
//   1. an admin (a user listed in `admins`, directly or through a group) may do everything;
//   2. otherwise the rule with the most specific pattern matching the repository decides alone
//      (util/repository-pattern.ts; equal specificity: the earlier rule), whether or not it names the action;
//   3. no rule matches: denied.
// Principals: `*` any authenticated user, `anonymous` a request without credentials, `@name` a group, else a user.
// push implies pull (every upload and manifest PUT needs both, as Distribution asks `pull,push`); delete implies
// nothing, and nothing implies delete.
import { compareSpecificity, compilePattern, covers, type RepositoryPattern } from '../util/repository-pattern.js';
import type { AccessPolicy, Action, Decision } from './policy.js';

export interface AccessRule {
  repositories: readonly string[];
  /** Absent and `[]` both grant nothing; absent on all three is reported by check-config (`[]` says "deny" on purpose). */
  pull?: readonly string[];
  push?: readonly string[];
  delete?: readonly string[];
}

/** auth.access, as the config gives it (groups from `groupsfile` merged in by the caller). */
export interface AccessRulesOptions {
  groups?: Readonly<Record<string, readonly string[]>>;
  admins?: readonly string[];
  rules?: readonly AccessRule[];
}

/** A problem with the rules, named by its config path (`auth.access.rules.2`). */
export interface AccessProblem { path: string; message: string }

const ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

interface Compiled {
  index: number;
  patterns: RepositoryPattern[];
  /** Who may do each action (push's principals already added to pull). */
  grants: Record<Action, Principals>;
}

/** A set of principals: flags for `*` and `anonymous`, user names, group names. */
interface Principals { any: boolean; anonymous: boolean; users: Set<string>; groups: Set<string> }

const PRINCIPAL_HINT = '`*` (any authenticated user), `anonymous`, `@group` or a user name';

/** Why `s` cannot be a principal, or undefined. Exported for the config schema's check. */
export function principalProblem(s: string): string | undefined {
  if (s === '' || /[\s:\x00-\x1f\x7f]/.test(s)) return `expected ${PRINCIPAL_HINT}`;
  if (s.startsWith('@') && !/^@[A-Za-z0-9._-]+$/.test(s)) return 'expected @ followed by a group name (letters, digits, ".", "_", "-")';
  return undefined;
}

export class RulesPolicy implements AccessPolicy {
  readonly unrestricted = false;
  readonly anonymous: boolean;
  private readonly rules: Compiled[];
  private readonly admins: Principals;
  private readonly memberOf = new Map<string, Set<string>>();

  constructor(o: AccessRulesOptions) {
    for (const [group, members] of Object.entries(o.groups ?? {})) {
      for (const m of members) {
        let set = this.memberOf.get(m);
        if (!set) this.memberOf.set(m, set = new Set());
        set.add(group);
      }
    }
    this.admins = principals(o.admins ?? []);
    this.rules = (o.rules ?? []).map((r, index) => {
      const push = principals(r.push ?? []);
      const pull = principals([...(r.pull ?? []), ...(r.push ?? [])]);
      return { index, patterns: r.repositories.map(compilePattern), grants: { pull, push, delete: principals(r.delete ?? []) } };
    });
    this.anonymous = this.rules.some((r) => ACTIONS.some((a) => r.grants[a].anonymous));
  }

  decide(user: string | null, repository: string, action: Action): Decision {
    if (user !== null && this.has(this.admins, user)) return { allowed: true, rule: 'admins' };
    const found = this.ruleFor(repository);
    if (!found) return { allowed: false, rule: 'no rule matched' };
    return { allowed: this.has(found.rule.grants[action], user), rule: `rules[${found.rule.index}] ${found.pattern.source}` };
  }

  pullable(user: string | null): (repository: string) => boolean {
    return (repository) => this.decide(user, repository, 'pull').allowed;
  }

  /** The deciding rule and its pattern: the most specific matching pattern; ties go to the earlier rule. */
  private ruleFor(repository: string): { rule: Compiled; pattern: RepositoryPattern } | undefined {
    let best: { rule: Compiled; pattern: RepositoryPattern } | undefined;
    for (const rule of this.rules) {
      for (const pattern of rule.patterns) {
        if (pattern.matches(repository) && (!best || compareSpecificity(pattern, best.pattern) > 0)) best = { rule, pattern };
      }
    }
    return best;
  }

  private has(p: Principals, user: string | null): boolean {
    if (user === null) return p.anonymous;
    if (p.any || p.users.has(user)) return true;
    const groups = this.memberOf.get(user);
    if (groups) for (const g of groups) if (p.groups.has(g)) return true;
    return false;
  }
}

function principals(list: readonly string[]): Principals {
  const p: Principals = { any: false, anonymous: false, users: new Set(), groups: new Set() };
  for (const s of list) {
    if (s === '*') p.any = true;
    else if (s === 'anonymous') p.anonymous = true;
    else if (s.startsWith('@')) p.groups.add(s.slice(1));
    else p.users.add(s);
  }
  return p;
}

/**
 * Errors (a group named nowhere, a group holding `*`, `anonymous` or another group) and warnings (a rule that can
 * never decide, a rule granting nothing, and, given the htpasswd users, names that are not among them).
 */
export function checkAccessRules(o: AccessRulesOptions, known?: { users?: ReadonlySet<string> }): { errors: AccessProblem[]; warnings: AccessProblem[] } {
  const errors: AccessProblem[] = [];
  const warnings: AccessProblem[] = [];
  const groups = o.groups ?? {};
  const named = new Map<string, string>();   // user → where it is first named
  const checkList = (list: readonly string[] | undefined, path: string) => {
    for (const [k, s] of (list ?? []).entries()) {
      if (s.startsWith('@')) {
        if (!Object.hasOwn(groups, s.slice(1))) errors.push({ path: `${path}.${k}`, message: `unknown group "${s.slice(1)}" (groups: ${Object.keys(groups).join(', ') || 'none'})` });
      } else if (s !== '*' && s !== 'anonymous' && !named.has(s)) named.set(s, `${path}.${k}`);
    }
  };
  for (const [g, members] of Object.entries(groups)) {
    for (const [k, m] of members.entries()) {
      if (m === '*' || m === 'anonymous' || m.startsWith('@')) {
        errors.push({ path: `auth.access.groups.${g}.${k}`, message: `a group lists users only, found "${m}"` });
      } else if (!named.has(m)) named.set(m, `auth.access.groups.${g}.${k}`);
    }
  }
  checkList(o.admins, 'auth.access.admins');
  if (o.admins?.includes('anonymous')) errors.push({ path: 'auth.access.admins', message: 'anonymous cannot be an admin' });
  const rules = o.rules ?? [];
  for (const [i, r] of rules.entries()) {
    for (const a of ACTIONS) checkList(r[a], `auth.access.rules.${i}.${a}`);
    if (ACTIONS.every((a) => r[a] === undefined)) {
      warnings.push({ path: `auth.access.rules.${i}`, message: 'grants nothing (no pull, push or delete): its repositories are denied to everyone but admins; write pull: [] to say so on purpose' });
    }
  }
  warnings.push(...unreachable(rules));
  if (known?.users) {
    for (const [u, path] of named) {
      if (!known.users.has(u)) warnings.push({ path, message: `user "${u}" is not in the htpasswd file` });
    }
  }
  return { errors, warnings };
}

/** Rules none of whose patterns can ever decide: each is covered by a pattern of another rule that wins over it
 *  (more specific, or as specific and earlier), e.g. a duplicate of an earlier pattern. */
function unreachable(rules: readonly AccessRule[]): AccessProblem[] {
  const compiled = rules.map((r) => r.repositories.map(compilePattern));
  const out: AccessProblem[] = [];
  for (const [i, mine] of compiled.entries()) {
    if (mine.length === 0) {
      out.push({ path: `auth.access.rules.${i}`, message: 'unreachable: no repositories' });
      continue;
    }
    const by: string[] = [];
    const dead = mine.every((p) => {
      for (const [j, theirs] of compiled.entries()) {
        if (j === i) continue;
        for (const q of theirs) {
          const c = compareSpecificity(q, p);
          if ((c > 0 || (c === 0 && j < i)) && covers(q, p)) { by.push(`${p.source} by rules[${j}] ${q.source}`); return true; }
        }
      }
      return false;
    });
    if (dead) out.push({ path: `auth.access.rules.${i}`, message: `unreachable: every pattern is decided by another rule first (${by.join('; ')})` });
  }
  return out;
}
