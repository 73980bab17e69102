// Key material for token auth: the issuer's signing key (a PEM private key, optionally with its certificate
// chain), the verifier's trust (Distribution's rootcertbundle and jwks files), and the key ids both sides
// compute. Reads files and parses keys with node:crypto and jose; it signs and verifies nothing itself.
//
// Key ids. Distribution 2.x (libtrust) looks a `kid` up under the libtrust fingerprint of each
// rootcertbundle key: SHA-256 of the DER SubjectPublicKeyInfo, the first 30 bytes in base32 (RFC 4648,
// no padding), grouped by four with ':'. Distribution 3.x looks it up under the RFC 7638 JWK thumbprint
// (base64url SHA-256), or under the `kid` of a jwks key. Both check an `x5c` chain first when the header
// carries one, which is why the issuer sends its certificate chain whenever it has one.
import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { pemCertificates } from '../../util/tls-cas.js';

/** The algorithms the verifier knows (Distribution's list); `signingalgorithms` picks from them. */
export const SIGNING_ALGORITHMS = [
  'EdDSA', 'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512',
] as const;
export type SigningAlgorithm = typeof SIGNING_ALGORITHMS[number];

/** Default allow-list of berth's verifier: the asymmetric ones (an HMAC secret cannot come from a rootcertbundle
 *  or a public jwks, and accepting HS* with a public key as the secret is the classic confusion attack). */
export const DEFAULT_VERIFY_ALGORITHMS: readonly SigningAlgorithm[] = [
  'EdDSA', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512',
];

export class TokenKeyError extends Error {
  readonly code = 'BERTH_TOKEN_KEY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenKeyError';
  }
}

/** The issuer's key: private key, its algorithm, `kid`, and the certificate chain (base64 DER, leaf first) if any. */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  alg: 'ES256' | 'ES384' | 'ES512' | 'RS256' | 'EdDSA';
  kid: string;
  x5c?: string[];
}

/** The JWS algorithm a key signs with: EC P-256 → ES256 (P-384 ES384, P-521 ES512), RSA → RS256, Ed25519 → EdDSA. */
export function algorithmFor(key: KeyObject): SigningKey['alg'] {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new TokenKeyError(`RSA key of ${bits} bits: at least 2048 are needed`);
    return 'RS256';
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ES256';
    if (curve === 'secp384r1') return 'ES384';
    if (curve === 'secp521r1') return 'ES512';
    throw new TokenKeyError(`EC curve ${String(curve)} is not usable for JWS: use P-256, P-384 or P-521`);
  }
  if (type === 'ed25519') return 'EdDSA';
  throw new TokenKeyError(`${String(type)} keys cannot sign tokens: use EC P-256 (ES256) or RSA (RS256)`);
}

/** libtrust's key id (Distribution 2.x, docker_auth): see the header comment. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const b32 = base32(createHash('sha256').update(der).digest().subarray(0, 30));
  return b32.match(/.{1,4}/g)!.join(':');
}

/** RFC 7638 thumbprint (SHA-256, base64url): Distribution 3.x's key id for rootcertbundle keys. */
export function jwkThumbprint(publicKey: KeyObject): Promise<string> {
  return exportJWK(publicKey).then((jwk) => calculateJwkThumbprint(jwk, 'sha256'));
}

function base32(buf: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0; let value = 0; let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte; bits += 8;
    while (bits >= 5) { out += alphabet[(value >>> (bits - 5)) & 31]; bits -= 5; }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** Every CERTIFICATE block of a PEM text, in order. */
export function parseCertificates(pem: string): X509Certificate[] {
  return pemCertificates(pem).map((b) => new X509Certificate(b));
}

/**
 * Loads the issuer's key (PEM, unencrypted: PKCS#8, SEC1 or PKCS#1) and, when given, its certificate chain
 * (PEM, leaf first; the leaf must hold the key's public half). Throws TokenKeyError naming the file.
 */
export async function loadSigningKey(keyPath: string, certificatePath?: string): Promise<SigningKey> {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(await readFile(keyPath));
  } catch (err) {
    throw new TokenKeyError(`${keyPath}: ${reason(err, 'not a PEM private key')}`, { cause: err });
  }
  const publicKey = createPublicKey(privateKey);
  let alg: SigningKey['alg'];
  try { alg = algorithmFor(privateKey); } catch (err) { throw new TokenKeyError(`${keyPath}: ${(err as Error).message}`); }
  const key: SigningKey = { privateKey, publicKey, alg, kid: libtrustKeyId(publicKey) };
  if (certificatePath) {
    let chain: X509Certificate[];
    try {
      chain = parseCertificates(await readFile(certificatePath, 'utf8'));
    } catch (err) {
      throw new TokenKeyError(`${certificatePath}: ${reason(err, 'not a PEM certificate')}`, { cause: err });
    }
    if (chain.length === 0) throw new TokenKeyError(`${certificatePath}: no PEM certificate in the file`);
    if (!chain[0]!.publicKey.equals(publicKey)) throw new TokenKeyError(`${certificatePath}: the first certificate does not hold the public half of ${keyPath}`);
    key.x5c = chain.map((c) => c.raw.toString('base64'));
  }
  return key;
}

/** Trust for the verifier: root certificates (x5c chains end at one) and keys by id. */
export interface TrustStore {
  roots: X509Certificate[];
  keys: Map<string, KeyObject>;
}

/**
 * Builds the verifier's trust from Distribution's files: each rootcertbundle certificate is a root and its key is
 * trusted under both key-id formats (libtrust for 2.x-style issuers such as docker_auth, RFC 7638 for 3.x-style);
 * each jwks key under its own `kid`. Throws TokenKeyError when neither gives a key (as Distribution).
 */
export async function loadTrust(o: { rootcertbundle?: string; jwks?: string; extra?: KeyObject[] }): Promise<TrustStore> {
  const store: TrustStore = { roots: [], keys: new Map() };
  if (o.rootcertbundle) {
    try {
      store.roots = parseCertificates(await readFile(o.rootcertbundle, 'utf8'));
    } catch (err) {
      throw new TokenKeyError(`${o.rootcertbundle}: ${reason(err, 'not a PEM certificate bundle')}`, { cause: err });
    }
    for (const cert of store.roots) await trustKey(store, cert.publicKey);
  }
  if (o.jwks) {
    let keys: JWK[];
    try {
      const doc = JSON.parse(await readFile(o.jwks, 'utf8')) as { keys?: unknown };
      if (!Array.isArray(doc.keys)) throw new Error('expected a JSON Web Key Set: {"keys": [...]}');
      keys = doc.keys as JWK[];
    } catch (err) {
      throw new TokenKeyError(`${o.jwks}: ${reason(err, 'not a JSON Web Key Set')}`, { cause: err });
    }
    for (const [i, jwk] of keys.entries()) {
      if (typeof jwk.kid !== 'string' || jwk.kid === '') throw new TokenKeyError(`${o.jwks}: keys[${i}] has no "kid"`);
      if (jwk.d !== undefined || jwk.kty === 'oct') throw new TokenKeyError(`${o.jwks}: keys[${i}] is not a public key`);
      try {
        store.keys.set(jwk.kid, createPublicKey({ key: jwk as never, format: 'jwk' }));
      } catch (err) {
        throw new TokenKeyError(`${o.jwks}: keys[${i}] (kid ${jwk.kid}): ${reason(err, 'not a usable key')}`, { cause: err });
      }
    }
  }
  for (const k of o.extra ?? []) await trustKey(store, k);
  if (store.keys.size === 0) {
    throw new TokenKeyError('token auth requires at least one token signing key (rootcertbundle or jwks)');
  }
  return store;
}

async function trustKey(store: TrustStore, key: KeyObject): Promise<void> {
  store.keys.set(libtrustKeyId(key), key);
  store.keys.set(await jwkThumbprint(key), key);
}

function reason(err: unknown, fallback: string): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'file not found';
  if (e?.code === 'EACCES') return 'permission denied';
  if (e?.code === 'EISDIR') return 'is a directory';
  return e?.code?.startsWith('ERR_OSSL') || e?.code === 'ERR_INVALID_ARG_VALUE' ? fallback : `${fallback} (${e?.message ?? String(err)})`;
}
