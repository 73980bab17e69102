// The access-control seam between the gateway and authentication back ends (htpasswd now, token auth
// later). Implementations decide who the caller is and whether it may do what the route grammar
// (http/v2-routes.ts) says the request needs; they never write responses: a refusal is a thrown
// ChallengeError that the gateway turns into an OCI 401 through the one error writer.
import type { IncomingMessage } from 'node:http';
import type { Access } from '../http/v2-routes.js';

export type { Access };

/** Who was let in. `user` is null for anonymous access. */
export interface Grant {
  user: string | null;
  /** Set when access rules decided (rules-access.ts): the rule(s) that allowed it, for the log line. */
  rule?: string;
  /** A cross-repository mount whose `from` the user may not pull: the gateway drops `mount` and `from`, so the
   *  request starts a plain upload session (the spec's answer when a mount is not possible). */
  dropMount?: boolean;
  /** The catalog, when rules restrict pulls: the repositories the user may pull (the list is filtered by it). */
  pullable?: (repository: string) => boolean;
}

/** What the gateway knows about the request besides its headers. */
export interface ClientFacts {
  /** The client's address as the gateway established it (behind a trusted proxy, from X-Forwarded-For). */
  addr?: string;
  /** The subject CN of a client certificate verified against tls.clientcas: the user when no authenticator
   *  names one (no auth.htpasswd). */
  certUser?: string;
}

export interface AccessController {
  /**
   * Resolves with a Grant when the request may perform every item of `access` (an empty list
   * means "just authenticate", e.g. `GET /v2/`). Rejects with a ChallengeError when credentials
   * are missing or wrong, with a TooManyAttemptsError when they were not checked (budget spent,
   * checks busy); any other rejection is an internal error (the gateway answers 500).
   * Rejects with a DeniedError when the caller is known and access rules refuse an item.
   * Never reads the request body and never writes to the response. `client.addr`: the client's address
   * as the gateway established it (behind a trusted proxy, from X-Forwarded-For); default the peer's.
   */
  authorize(req: IncomingMessage, access: Access[], client?: ClientFacts): Promise<Grant>;
  /** Re-reads what may change without a restart (SIGHUP: the access rules' groups file). Keeps the current state
   *  when the new one fails to load, and logs why; never rejects. Absent: nothing to reload. */
  reload?(): Promise<void>;
  /** Releases timers/watchers. Idempotent. */
  close(): void;
}

/** `closed`: no user table (the htpasswd file is missing or not a file): every request is refused.
 *  `insufficient_scope`: a valid bearer token that lacks an action the request needs (token auth). */
export type ChallengeReason = 'missing' | 'malformed' | 'invalid' | 'closed' | 'insufficient_scope';

/**
 * "Authenticate and try again": the gateway answers 401 UNAUTHORIZED with
 * `WWW-Authenticate: <wwwAuthenticate>`. `reason` is for the log line only; the client always gets
 * the same generic answer.
 */
export class ChallengeError extends Error {
  readonly code = 'UNAUTHORIZED' as const;
  /** `user` is set only for a known user with a wrong password (safe to log; an unknown name might be a password).
   *  `rule`: an anonymous request refused by this access rule (rules-access.ts), for the log line. */
  constructor(readonly wwwAuthenticate: string, readonly reason: ChallengeReason = 'missing', readonly user?: string,
    readonly rule?: string) {
    super('authentication required');
    this.name = 'ChallengeError';
  }
}

/**
 * "Authenticated, but not allowed": the gateway answers 403 DENIED. `rule` names the rule that decided (for the
 * log line only; the client gets the spec's message and which repository and action were refused).
 */
export class DeniedError extends Error {
  readonly code = 'DENIED' as const;
  constructor(readonly user: string | null, readonly repository: string, readonly action: string, readonly rule: string) {
    super(`${action} on ${repository} denied`);
    this.name = 'DeniedError';
  }
}

/**
 * "Not now": the credentials were not checked because this address (or address and user) spent its budget
 * of failures, or too many checks are in progress. The gateway answers 429 TOOMANYREQUESTS with
 * `Retry-After: <retryAfterSeconds>`.
 */
export class TooManyAttemptsError extends Error {
  readonly code = 'TOOMANYREQUESTS' as const;
  /** `user` as for ChallengeError: set only for a user the table knows. */
  constructor(readonly retryAfterSeconds: number, readonly reason: 'failures' | 'busy', readonly user?: string) {
    super('too many authentication attempts');
    this.name = 'TooManyAttemptsError';
  }
}

/** `Basic realm="..."`, with the realm made a valid quoted-string (RFC 9110 §5.6.4). */
export function basicChallenge(realm: string): string {
  const safe = realm.replace(/[\x00-\x1f\x7f]/g, '').replace(/["\\]/g, (c) => '\\' + c);
  return `Basic realm="${safe}"`;
}

/** No auth configured: everyone may do everything, as an anonymous user. */
export class AnonymousAccess implements AccessController {
  async authorize(): Promise<Grant> {
    return { user: null };
  }
  close(): void {}
}
