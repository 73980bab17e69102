// Who may do what on which repository: the seam between access rules (auth.access in gateway.yml) and the
// things that ask (the gateway's access controllers, the token issuer, the catalog filter, `berth access check`).
// Pure: no I/O. The rules implementation is rules.ts; with no rules every authenticated user may do
// everything (nginx's auth_basic parity) and `allowAll` answers.
import type { Action } from '../http/v2-routes.js';

export type { Action };

/** One decision and why: `rule` names the rule that decided (for the access log and `berth access check`). */
export interface Decision {
  allowed: boolean;
  /** e.g. `rules[1] team/**`, `admins`, `no rules (every authenticated user)`, `no rule matched`. */
  rule: string;
}

export interface AccessPolicy {
  /** `user` null: an anonymous request (no credentials). */
  decide(user: string | null, repository: string, action: Action): Decision;
  /** True when there are no rules: every authenticated user may do everything (callers may skip per-repository
   *  work such as filtering the catalog). */
  readonly unrestricted: boolean;
  /** True when some rule grants anonymous requests something: they may then list the catalog (filtered). */
  readonly anonymous: boolean;
  /** The catalog filter: whether `user` may pull a repository (decide(user, repository, 'pull').allowed). */
  pullable(user: string | null): (repository: string) => boolean;
}

/** No rules configured: every authenticated user may do everything; anonymous requests are not decided here
 *  (the authenticator challenges them). */
export const allowAll: AccessPolicy = {
  unrestricted: true,
  anonymous: false,
  decide: (user) => user === null
    ? { allowed: false, rule: 'no rules (anonymous not allowed)' }
    : { allowed: true, rule: 'no rules (every authenticated user)' },
  pullable: (user) => () => user !== null,
};
