// Token auth's access controller (Distribution's registry/auth/token): `Authorization: Bearer <JWT>` verified
// with jose against the configured trust (an x5c chain to a rootcertbundle certificate, a jwk or kid naming a
// trusted key, or the issuer's own key), the signingalgorithms allow-list, iss, aud = service, exp/nbf with
// leeway; then the token's `access` claim must cover every item the route grammar says the request needs.
// Every refusal is a ChallengeError carrying the Bearer challenge (with the scope needed and, as Distribution,
// error="invalid_token" or "insufficient_scope"). It never writes a response and never logs a token.
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { decodeProtectedHeader, jwtVerify, type JWK, type ProtectedHeaderParameters } from 'jose';
import { v2Request } from '../../http/v2-routes.js';
import type { Logger } from '../../log/logger.js';
import { rateLimitedLog, type RateLimitedLog } from '../../log/rate-limit.js';
import { ChallengeError, DeniedError, type Access, type AccessController, type Grant } from '../access.js';
import type { AccessPolicy, Action } from '../policy.js';
import type { SigningAlgorithm, TrustStore } from './keys.js';
import { accessScopes, bearerChallenge, missingAccess, type TokenClaims } from './scope.js';

/** Distribution's leeway on exp and nbf (token.go: 60 s). */
export const DEFAULT_LEEWAY_SECONDS = 60;
/** Longest Authorization header looked at; longer ones are refused unparsed. */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** Longest x5c chain followed. */
const MAX_CHAIN = 8;

export interface TokenVerifierOptions {
  /** The realm clients are sent to: a fixed URL, or worked out per request (the issuer on this listener,
   *  Distribution's autoredirect). */
  realm: string | ((req: IncomingMessage) => string);
  service: string;
  issuer: string;
  trust: TrustStore;
  algorithms: readonly SigningAlgorithm[];
  /** The issuer's own keys (berth issues the tokens; after a key reload also the previous one): a token whose kid
   *  names one is verified with it directly. */
  ownKeys?: readonly OwnKey[];
  /**
   * Set when berth issues the tokens from these rules: a valid token of a known user that lacks an action the policy
   * refuses them is answered 403 DENIED (a DeniedError: asking the issuer again cannot help); an action the policy
   * allows gets the Bearer challenge with error="insufficient_scope", so the client fetches a token that has it.
   * Anonymous tokens always get the challenge (the client may log in).
   */
  policy?: AccessPolicy;
  leewaySeconds?: number;
  log: Logger;
  now?: () => number;
}

const REPOSITORY_ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];
const BEARER = /^bearer[ \t]+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)[ \t]*$/i;

export interface OwnKey { kid: string; key: KeyObject }

export class TokenAccessController implements AccessController {
  private readonly log: Logger;
  private ownKeys: readonly OwnKey[];
  private trust: TrustStore;

  private readonly refusedLog: RateLimitedLog;

  constructor(private readonly o: TokenVerifierOptions) {
    this.log = o.log.child({ module: 'auth', auth: 'token' });
    this.refusedLog = rateLimitedLog(this.log);
    this.ownKeys = o.ownKeys ?? [];
    this.trust = o.trust;
  }

  /** Replaces the keys tokens are verified with (a key reload); requests already verifying keep the old ones. */
  setKeys(k: { ownKeys?: readonly OwnKey[]; trust?: TrustStore }): void {
    if (k.ownKeys) this.ownKeys = k.ownKeys;
    if (k.trust) this.trust = k.trust;
  }

  async authorize(req: IncomingMessage, access: Access[]): Promise<Grant> {
    const challenge = (error?: 'invalid_token' | 'insufficient_scope') => bearerChallenge({
      realm: typeof this.o.realm === 'string' ? this.o.realm : this.o.realm(req),
      service: this.o.service, scopes: accessScopes(access), error,
    });
    const header = req.headers.authorization;
    if (header === undefined || header === '') throw new ChallengeError(challenge(), 'missing');
    const m = header.length <= MAX_TOKEN_LENGTH ? BEARER.exec(header.trim()) : null;
    if (!m) throw new ChallengeError(challenge(), 'malformed');   // Basic or garbage: as Distribution, no error= (token required)

    let claims: TokenClaims;
    try {
      claims = await this.verify(m[1]!);
    } catch (err) {
      // A client can resend a bad token at will: one line per reason per 10 s (the request log still has each 401)
      const reason = (err as Error).message;
      this.refusedLog('info', reason.slice(0, 120), { reason }, 'bearer token refused');
      throw new ChallengeError(challenge('invalid_token'), 'invalid');
    }
    const user = typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub : null;
    let missing = missingAccess(claims.access, access);
    // A cross-repository mount whose `from` the token cannot pull: a plain upload session instead (the spec's
    // answer when a mount is not possible), as with Basic auth and rules
    const mountFrom = mountSource(req, access);
    const dropMount = mountFrom !== undefined && missing.some((x) => x.type === 'repository' && x.name === mountFrom.name)
      && !missingAccess(claims.access, access.filter((a) => a !== mountFrom)).length;
    if (dropMount) missing = [];
    if (missing.length > 0) {
      // berth issued it from these rules: an action they refuse would not be granted by asking again
      for (const x of this.o.policy && user !== null ? missing : []) {
        if (x.type !== 'repository' || !(REPOSITORY_ACTIONS as readonly string[]).includes(x.action)) continue;
        const d = this.o.policy!.decide(user, x.name, x.action as Action);
        if (!d.allowed) throw new DeniedError(user, x.name, x.action, `token: ${d.rule}`);
      }
      throw new ChallengeError(challenge('insufficient_scope'), 'insufficient_scope', user ?? undefined);
    }
    const policy = this.o.policy;
    const catalog = policy && !policy.unrestricted && access.some((a) => a.type === 'registry');
    return {
      user, ...(dropMount ? { dropMount, rule: 'token (mount refused: no pull on from)' } : {}),
      ...(catalog ? { rule: 'token: catalog (filtered by pull)', pullable: policy.pullable(user) } : {}),
    };
  }

  close(): void {}

  /** Verifies a compact JWS and returns its claims; throws (with a reason for the log) on any failure. */
  async verify(token: string): Promise<TokenClaims> {
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new Error('malformed token header');
    }
    const alg = header.alg;
    if (typeof alg !== 'string' || !(this.o.algorithms as readonly string[]).includes(alg)) {
      throw new Error(`signing algorithm ${JSON.stringify(alg)} is not allowed`);
    }
    const key = this.signingKey(header);
    const nowMs = this.o.now?.() ?? Date.now();
    const { payload } = await jwtVerify(token, key, {
      algorithms: [...this.o.algorithms],
      issuer: this.o.issuer,
      audience: this.o.service,
      clockTolerance: this.o.leewaySeconds ?? DEFAULT_LEEWAY_SECONDS,
      currentDate: new Date(nowMs),
      requiredClaims: ['exp'],
    });
    return payload as TokenClaims;
  }

  /**
   * The key that must have signed the token, in Distribution 3's order: the issuer's own key by kid; an x5c chain
   * verified to a root; a jwk (its own x5c chain verified, or its kid trusted); a trusted kid.
   */
  private signingKey(header: ProtectedHeaderParameters): KeyObject {
    const trust = this.trust;
    const ownKey = typeof header.kid === 'string' ? this.ownKeys.find((k) => k.kid === header.kid) : undefined;
    if (ownKey && header.jwk === undefined) return ownKey.key;   // berth's own tokens (with their x5c, when configured)
    if (header.x5c !== undefined) {
      return verifyChain(header.x5c, trust.roots, this.o.now?.() ?? Date.now());
    }
    if (header.jwk !== undefined) {
      const jwk = header.jwk as JWK & { x5c?: unknown };
      if (Array.isArray(jwk.x5c) && jwk.x5c.length > 0) {
        const leaf = verifyChain(jwk.x5c, trust.roots, this.o.now?.() ?? Date.now());
        let embedded: KeyObject;
        try { embedded = createPublicKey({ key: stripPrivate(jwk) as never, format: 'jwk' }); } catch { throw new Error('jwk header is not a public key'); }
        if (!embedded.equals(leaf)) throw new Error('jwk header key does not match its certificate');
        return leaf;
      }
      const trusted = typeof jwk.kid === 'string' ? trust.keys.get(jwk.kid) : undefined;
      if (!trusted) throw new Error('untrusted JWK with no certificate chain');
      return trusted;
    }
    if (typeof header.kid === 'string' && header.kid !== '') {
      const trusted = trust.keys.get(header.kid);
      if (!trusted) throw new Error(`token signed by untrusted key with ID ${JSON.stringify(header.kid)}`);
      return trusted;
    }
    throw new Error('token names no signing key (no x5c, jwk or kid)');
  }
}

/** The `from` item of a cross-repository mount (POST …/blobs/uploads/?mount=&from=): the last access item. */
function mountSource(req: IncomingMessage, access: Access[]): Access | undefined {
  const route = v2Request(req).route;
  if (route?.kind !== 'uploadStart' || !route.mount || req.method !== 'POST' || access.length < 2) return undefined;
  return access[access.length - 1];
}

function stripPrivate(jwk: JWK & { x5c?: unknown }): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, x5c: _x5c, ...pub } = jwk as JWK & Record<string, unknown>;
  return pub as JWK;
}

/**
 * Verifies an x5c chain (base64 DER, leaf first) up to one of `roots` and returns the leaf's key: each link's
 * signature checked by node:crypto, every certificate within its validity period, every issuer a CA. A leaf
 * that is itself one of the roots is trusted as it is (Go's x509.Verify does the same).
 */
export function verifyChain(x5c: unknown[], roots: readonly X509Certificate[], nowMs: number): KeyObject {
  if (x5c.length === 0 || x5c.length > MAX_CHAIN) throw new Error('x5c chain is empty or too long');
  let chain: X509Certificate[];
  try {
    chain = x5c.map((c) => {
      if (typeof c !== 'string') throw new Error('not a string');
      return new X509Certificate(Buffer.from(c, 'base64'));
    });
  } catch {
    throw new Error('x5c holds something that is not a certificate');
  }
  const valid = (c: X509Certificate) => Date.parse(c.validFrom) <= nowMs && nowMs <= Date.parse(c.validTo);
  const isRoot = (c: X509Certificate) => roots.some((r) => r.raw.equals(c.raw));
  const leaf = chain[0]!;
  if (!valid(leaf)) throw new Error('x5c leaf certificate is expired or not yet valid');
  let current = leaf;
  const intermediates = chain.slice(1);
  for (let depth = 0; depth <= MAX_CHAIN; depth++) {
    if (isRoot(current)) return leaf.publicKey;
    const root = roots.find((r) => r.ca && valid(r) && current.checkIssued(r) && current.verify(r.publicKey));
    if (root) return leaf.publicKey;
    const next = intermediates.find((i) => i.ca && valid(i) && current.checkIssued(i) && current.verify(i.publicKey));
    if (!next) break;
    current = next;
  }
  throw new Error('x5c chain does not lead to a trusted root certificate');
}
