// The token issuer (Distribution's token.md and oauth.md, the server half): given who asked (already
// authenticated by the gateway: a Basic or OAuth password user, a client certificate, or nobody) and what they
// asked for, it grants the intersection of the requested scopes and what the access policy allows, and signs a
// short-lived JWT with the configured key (kid in libtrust form, x5c when a certificate is configured). Refresh
// tokens are JWTs too, signed by the same key for a different audience, bound to user and service, and stamped
// with the user's current password entry: a removed user or a changed password ends them. It speaks no HTTP.
import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import type { AccessPolicy, Action } from '../policy.js';
import type { SigningKey } from './keys.js';
import { mergeScopes, parseScopes, type ResourceActions, type TokenClaims } from './scope.js';

export interface TokenIssuerOptions {
  /** Replaced by setKey. */
  key: SigningKey;
  /** The `aud` of access tokens: the registry's service name (Distribution's auth.token.service). */
  service: string;
  /** The `iss` of every token (Distribution's auth.token.issuer). */
  issuer: string;
  /** Access token lifetime, seconds (default 300). */
  expirationSeconds: number;
  /** Refresh token lifetime, seconds (default 30 days); 0: no refresh tokens. */
  refreshExpirationSeconds: number;
  policy: AccessPolicy;
  /**
   * A short stamp of the user's current credential entry (e.g. a digest of the htpasswd hash), or undefined when
   * the user no longer exists. Refresh tokens carry it; refreshing checks it again. Absent: no refresh tokens.
   */
  userStamp?: (user: string) => Promise<string | undefined>;
  now?: () => number;
}

/** OAuth2 error codes (RFC 6749 §5.2) with the status the endpoint answers. */
export type TokenErrorCode = 'invalid_request' | 'invalid_grant' | 'unsupported_grant_type' | 'invalid_scope' | 'invalid_client';

/** A refused token request: 400 (bad request, bad refresh token) or 401 (credentials needed or wrong). */
export class TokenRequestError extends Error {
  readonly code = 'BERTH_TOKEN_REQUEST';
  constructor(readonly status: 400 | 401, readonly error: TokenErrorCode, readonly description: string) {
    super(`${error}: ${description}`);
    this.name = 'TokenRequestError';
  }
}

/** What the gateway parsed from GET ?service=&scope=&offline_token= or the POST form. */
export interface TokenRequest {
  /** The authenticated user; null: anonymous (no credentials given). */
  user: string | null;
  service: string | undefined;
  /** Every `scope` value as sent (each may hold several space-separated scopes). */
  scope: readonly string[];
  /** A refresh token wanted (GET offline_token=true, POST access_type=offline). */
  offline: boolean;
  /** How the user was authenticated: a refresh token is only issued to users with a credential entry. */
  via: 'password' | 'certificate' | 'anonymous';
}

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  /** The granted scopes, space-separated (oauth.md). */
  scope: string;
}

/** Actions a repository scope may name; `*` stands for all three. */
const REPOSITORY_ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];
const REFRESH_AUDIENCE_PREFIX = 'berth-refresh:';

export class TokenIssuer {
  /** The key before the last setKey: refresh tokens it signed stay valid until the next one. */
  private previous?: SigningKey;

  constructor(private readonly o: TokenIssuerOptions) {}

  /** Signs with `key` from now on (a key reload); the previous key still verifies refresh tokens. */
  setKey(key: SigningKey): void {
    if (key.kid === this.o.key.kid) { this.o.key = key; return; }
    this.previous = this.o.key;
    this.o.key = key;
  }

  get service(): string { return this.o.service; }

  /** GET, or POST grant_type=password: the user was authenticated by the caller. */
  async issue(r: TokenRequest): Promise<TokenResponse> {
    this.checkService(r.service);
    const granted = this.grant(r.user, r.scope);
    const refresh = r.offline && r.user !== null && r.via === 'password' ? await this.refreshToken(r.user) : undefined;
    return this.respond(r.user, granted, refresh);
  }

  /** POST grant_type=refresh_token: the refresh token names the user; it must still exist with the same entry. */
  async refresh(refreshToken: string, r: Omit<TokenRequest, 'user' | 'via'>): Promise<TokenResponse> {
    this.checkService(r.service);
    const user = await this.verifyRefreshToken(refreshToken);
    const granted = this.grant(user, r.scope);
    const again = r.offline ? await this.refreshToken(user) : undefined;
    return this.respond(user, granted, again);
  }

  /** The requested scopes narrowed to what the policy allows `user` (an empty list is a valid answer). */
  grant(user: string | null, scope: readonly string[]): ResourceActions[] {
    const { scopes, invalid } = parseScopes(scope);
    if (invalid.length > 0) throw new TokenRequestError(400, 'invalid_scope', `malformed scope ${JSON.stringify(invalid[0])}`);
    const out: ResourceActions[] = [];
    for (const s of scopes) {
      if (s.type === 'repository') {
        const wanted = s.actions.includes('*') ? REPOSITORY_ACTIONS : s.actions.filter((a): a is Action => (REPOSITORY_ACTIONS as readonly string[]).includes(a));
        const allowed = wanted.filter((a) => this.o.policy.decide(user, s.name, a).allowed);
        if (allowed.length > 0) out.push({ type: s.type, ...(s.class ? { class: s.class } : {}), name: s.name, actions: allowed });
      } else if (s.type === 'registry' && s.name === 'catalog' && (user !== null || this.o.policy.anonymous)) {
        // the listing itself is filtered by the rules: every authenticated user may ask (anonymous ones when the
        // rules grant them anything)
        out.push({ type: 'registry', name: 'catalog', actions: ['*'] });
      }
    }
    return mergeScopes(out);
  }

  /** Signs an access token for `user` with `access` (exported for tests and the check command). */
  async sign(user: string | null, access: ResourceActions[], nowSeconds = this.nowSeconds()): Promise<string> {
    const { key } = this.o;
    const claims: TokenClaims = { access };
    return new SignJWT(claims as Record<string, unknown>)
      .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid, ...(key.x5c ? { x5c: key.x5c } : {}) })
      .setIssuer(this.o.issuer)
      .setSubject(user ?? '')
      .setAudience(this.o.service)
      .setIssuedAt(nowSeconds)
      .setNotBefore(nowSeconds - 1)
      .setExpirationTime(nowSeconds + this.o.expirationSeconds)
      .setJti(randomUUID())
      .sign(key.privateKey);
  }

  private async respond(user: string | null, access: ResourceActions[], refresh: string | undefined): Promise<TokenResponse> {
    const now = this.nowSeconds();
    const token = await this.sign(user, access, now);
    return {
      token, access_token: token, expires_in: this.o.expirationSeconds, issued_at: new Date(now * 1000).toISOString(),
      scope: access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' '),
      ...(refresh ? { refresh_token: refresh } : {}),
    };
  }

  private checkService(service: string | undefined): void {
    if (service === undefined || service === '') throw new TokenRequestError(400, 'invalid_request', 'missing service');
    if (service !== this.o.service) throw new TokenRequestError(400, 'invalid_request', `unknown service ${JSON.stringify(service)}`);
  }

  private async refreshToken(user: string): Promise<string | undefined> {
    if (!this.o.userStamp || this.o.refreshExpirationSeconds <= 0) return undefined;
    const stamp = await this.o.userStamp(user);
    if (stamp === undefined) return undefined;
    const now = this.nowSeconds();
    return new SignJWT({ stamp })
      .setProtectedHeader({ alg: this.o.key.alg, typ: 'JWT', kid: this.o.key.kid })
      .setIssuer(this.o.issuer)
      .setSubject(user)
      .setAudience(REFRESH_AUDIENCE_PREFIX + this.o.service)
      .setIssuedAt(now)
      .setExpirationTime(now + this.o.refreshExpirationSeconds)
      .setJti(randomUUID())
      .sign(this.o.key.privateKey);
  }

  private async verifyRefreshToken(token: string): Promise<string> {
    const bad = (why: string) => new TokenRequestError(400, 'invalid_grant', why);
    if (!this.o.userStamp) throw bad('refresh tokens are not issued here');
    let payload: Record<string, unknown>;
    try {
      const kid = decodeProtectedHeader(token).kid;
      const key = this.previous && kid === this.previous.kid ? this.previous : this.o.key;
      ({ payload } = await jwtVerify(token, key.publicKey, {
        algorithms: [key.alg], issuer: this.o.issuer, audience: REFRESH_AUDIENCE_PREFIX + this.o.service,
        currentDate: new Date(this.nowSeconds() * 1000), requiredClaims: ['exp', 'sub'],
      }));
    } catch {
      throw bad('invalid or expired refresh token');
    }
    const user = payload.sub as string;
    const stamp = await this.o.userStamp(user);
    if (stamp === undefined || stamp !== payload.stamp) throw bad('refresh token revoked (the user was removed or its password changed)');
    return user;
  }

  private nowSeconds(): number {
    return Math.floor((this.o.now?.() ?? Date.now()) / 1000);
  }
}
