// Token auth from the config: the verifier /v1 and /v2 use instead of Basic auth (auth.token: an external token
// server's keys; auth.issuer: berth's own key, plus the token endpoint on this listener). Loads the key files once
// at start (a bad file is a TokenKeyError naming it). It decides nothing about requests itself.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { basicChallenge, type AccessController } from '../auth/access.js';
import { HtpasswdAccessController } from '../auth/basic.js';
import type { AccessPolicy } from '../auth/policy.js';
import { AccessConfigError, buildAccess, ReloadablePolicy, reloadPolicy } from '../auth/rules-access.js';
import { TokenIssuer } from '../auth/token/issuer.js';
import {
  DEFAULT_VERIFY_ALGORITHMS, loadSigningKey, loadTrust, type SigningAlgorithm, type SigningKey, type TrustStore,
} from '../auth/token/keys.js';
import { TokenAccessController } from '../auth/token/verifier.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { createTokenEndpoint, type TokenEndpoint } from './token-endpoint.js';

export interface TokenAuth {
  /** The /v1 and /v2 access controller (Bearer tokens). */
  access: AccessController;
  /** berth's token endpoint (auth.issuer). */
  endpoint?: TokenEndpoint;
  /**
   * Re-reads auth.issuer's key and certificate and auth.token's rootcertbundle and jwks (SIGHUP). New tokens are
   * signed with the new key; tokens (and refresh tokens) of the previous key stay valid until they expire or the
   * next reload. A file that fails to load is logged and everything stays as it was.
   */
  reload(): Promise<void>;
}

export interface TokenAuthOptions {
  /** What the issuer grants and the verifier refuses with 403 (default: auth.access's rules; none: every
   *  authenticated user may do everything). */
  policy?: AccessPolicy;
  log: Logger;
}

/**
 * undefined when neither auth.token nor auth.issuer is configured. With the issuer, auth.htpasswd (when set) is
 * loaded here: the token endpoint checks Basic and password-grant credentials against it, and refresh tokens carry
 * a stamp of the user's entry. The returned access controller's close() releases it too.
 */
export async function createTokenAuth(config: Config, o: TokenAuthOptions): Promise<TokenAuth | undefined> {
  const t = config.auth?.token;
  const i = config.auth?.issuer;
  if (!t && !i) return undefined;
  const log = o.log.child({ module: 'auth', auth: 'token' });
  let policy = o.policy;
  if (!policy) {   // auth.access: the rules the issuer grants by (as createAccessController builds them for Basic auth)
    const built = await buildAccess(config.auth?.access);
    if (built.errors.length) throw new AccessConfigError(built.errors);
    for (const w of built.warnings) log.warn({ key: w.path }, w.message);
    policy = built.policy.unrestricted ? built.policy : new ReloadablePolicy(built.policy, config.auth?.access);
  }
  const htpasswd = config.auth?.htpasswd;
  const basic = i && htpasswd ? await HtpasswdAccessController.create({ ...htpasswd, log: o.log }) : undefined;
  const userStamp = basic ? async (user: string) => {
    const entry = (await basic.file.current()).users.get(user);
    return entry ? entryStamp(entry.hash) : undefined;
  } : undefined;
  const key = i ? await loadSigningKey(i.key, i.certificate) : undefined;
  const trust: TrustStore = t ? await loadTrust({ rootcertbundle: t.rootcertbundle, jwks: t.jwks }) : { roots: [], keys: new Map() };
  const algorithms = (t?.signingalgorithms.length ? t.signingalgorithms : DEFAULT_VERIFY_ALGORITHMS) as SigningAlgorithm[];
  if (key && !algorithms.includes(key.alg)) {
    throw new Error(`auth.token.signingalgorithms does not allow ${key.alg}, the algorithm of auth.issuer.key`);
  }
  const prefix = (config.urls?.prefix ?? '').replace(/\/+$/, '');
  const proto = config.tls ? 'https' : 'http';
  const trustsForwardedProto = config.proxy.trustedproxies.length > 0;
  /** scheme://Host of the request (X-Forwarded-Proto only when proxies are trusted), for derived realms. */
  const base = (req: IncomingMessage) => {
    const xfp = trustsForwardedProto ? String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim() : '';
    return `${xfp === 'http' || xfp === 'https' ? xfp : proto}://${req.headers.host ?? 'localhost'}`;
  };
  const realm: string | ((req: IncomingMessage) => string) = t
    ? (t.autoredirect ? (req) => `${base(req)}${t.autoredirectpath}` : t.realm)
    : i!.realm !== '' ? i!.realm : (req) => `${base(req)}${prefix}${i!.path}`;

  let ownKeys = key ? [{ kid: key.kid, key: key.publicKey }] : [];
  const access = new TokenAccessController({
    realm, service: (t ?? i)!.service, issuer: (t ?? i)!.issuer, trust, algorithms, log,
    ...(key ? { ownKeys, policy } : {}),
  });
  const close = access.close.bind(access);
  access.close = () => { close(); basic?.close(); };
  let endpoint: TokenEndpoint | undefined;
  let issuer: TokenIssuer | undefined;
  if (i && key) {
    issuer = new TokenIssuer({
      key, service: i.service, issuer: i.issuer, policy, userStamp,
      expirationSeconds: Math.max(1, Math.round(i.expiration / 1000)),
      refreshExpirationSeconds: Math.round(i.refreshexpiration / 1000),
    });
    endpoint = createTokenEndpoint({
      path: i.path, issuer, basic,
      basicChallenge: basicChallenge(config.auth?.htpasswd?.realm ?? 'Registry Realm'),
    });
  }
  log.info({
    verifier: t ? { realm: t.autoredirect ? `(autoredirect) ${t.autoredirectpath}` : t.realm, service: t.service, issuer: t.issuer, keys: trust.keys.size, roots: trust.roots.length } : undefined,
    issuer: i && key ? { path: i.path, service: i.service, issuer: i.issuer, alg: key.alg, kid: key.kid, x5c: key.x5c?.length ?? 0 } : undefined,
  }, 'token authentication enabled');
  const reload = async (): Promise<void> => {
    try {
      const next = i ? await loadSigningKey(i.key, i.certificate) : undefined;
      if (next && !algorithms.includes(next.alg)) throw new Error(`the new key's algorithm ${next.alg} is not in auth.token.signingalgorithms`);
      const nextTrust = t ? await loadTrust({ rootcertbundle: t.rootcertbundle, jwks: t.jwks }) : undefined;
      if (next) {
        ownKeys = [{ kid: next.kid, key: next.publicKey }, ...ownKeys.filter((k) => k.kid !== next.kid).slice(0, 1)];
        issuer!.setKey(next);
      }
      access.setKeys({ ownKeys, ...(nextTrust ? { trust: nextTrust } : {}) });
      log.info({ kid: next?.kid, previousKid: ownKeys[1]?.kid, trustedKeys: nextTrust?.keys.size }, 'token keys reloaded');
    } catch (err) {
      log.error({ err }, 'token keys not reloaded: keeping the current ones');
    }
    if (policy instanceof ReloadablePolicy) await reloadPolicy(policy, log);
  };
  return { access, endpoint, reload };
}

/** The stamp of an htpasswd entry: a digest of its hash (a changed password or a removed user ends refresh tokens). */
export function entryStamp(hash: string): string {
  return createHash('sha256').update(hash).digest('base64url').slice(0, 22);
}

export type { SigningKey };
