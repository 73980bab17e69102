// The password hash formats an htpasswd line may hold, as nginx's auth_basic takes them on glibc: its own
// $apr1$, {SHA}, {SSHA} and {PLAIN}, and crypt(3)'s bcrypt, $1$, $5$, $6$ and DES. Recognises a hash
// (classify) and checks one password against it (defaultVerifier), through well-kept libraries or node:crypto;
// never hand-rolls a hash function and never logs or returns a hash or a password.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { verifyShaCrypt } from './sha-crypt-worker.js';

const require = createRequire(import.meta.url);
// apache-md5 and apache-crypt are CommonJS with ESM-style .d.ts; require() them to get the functions.
// apache-md5 computes both $apr1$ and MD5-crypt $1$ (the salt's prefix picks the magic).
const md5Crypt: (password: string, salt?: string) => string = require('apache-md5');
const desCrypt: (password: string, salt?: string) => string = require('apache-crypt');

export type HashKind = 'bcrypt' | 'apr1' | 'md5crypt' | 'sha256crypt' | 'sha512crypt' | 'des' | 'sha' | 'ssha' | 'plain';

/** $5$/$6$ rounds above this are refused: a check runs in a worker thread (sha-crypt-worker.ts), but one at a
 *  time, and 5000 rounds (the default) take ~20 ms of $6$, 1,000,000 about 2 s. */
export const MAX_SHA_CRYPT_ROUNDS = 1_000_000;

const B64 = '[./A-Za-z0-9]';
const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const APR1 = new RegExp(`^\\$apr1\\$${B64}{1,8}\\$${B64}{22}$`);
const MD5_CRYPT = new RegExp(`^\\$1\\$[^$:]{0,8}\\$${B64}{22}$`);
const SHA_CRYPT = /^\$([56])\$(?:rounds=(\d{1,9})\$)?[^$:]{0,16}\$([./A-Za-z0-9]+)$/;
const DES = new RegExp(`^${B64}{13}$`);
const SHA = /^\{SHA\}[A-Za-z0-9+/]{27}=$/;
const SSHA = /^\{SSHA\}[A-Za-z0-9+/]+={0,2}$/;

export type Classified = { kind: HashKind; warning?: string } | { problem: string };

/** What kind of hash `hash` is, or why it is not accepted. Messages never include the hash (it might be a
 *  plaintext password). */
export function classify(hash: string): Classified {
  if (hash.startsWith('$2')) {
    const m = BCRYPT.exec(hash);
    if (!m) return { problem: /^\$2x\$/.test(hash) ? 'unsupported hash: bcrypt $2x$' : 'malformed bcrypt hash' };
    const cost = Number(m[1]);
    return cost >= 4 && cost <= 31 ? { kind: 'bcrypt' } : { problem: `bcrypt cost ${m[1]} out of range 04..31` };
  }
  if (hash.startsWith('$apr1$')) return APR1.test(hash) ? { kind: 'apr1' } : { problem: 'malformed apr1 hash' };
  if (hash.startsWith('$1$')) return MD5_CRYPT.test(hash) ? { kind: 'md5crypt' } : { problem: 'malformed MD5-crypt $1$ hash' };
  if (hash.startsWith('$5$') || hash.startsWith('$6$')) {
    const name = hash[1] === '5' ? 'SHA-256-crypt $5$' : 'SHA-512-crypt $6$';
    const m = SHA_CRYPT.exec(hash);
    if (!m || m[3]!.length !== (m[1] === '5' ? 43 : 86)) return { problem: `malformed ${name} hash` };
    const rounds = m[2] === undefined ? 5000 : Number(m[2]);
    if (rounds > MAX_SHA_CRYPT_ROUNDS) {
      return { problem: `${name} with rounds=${rounds}: berth checks at most ${MAX_SHA_CRYPT_ROUNDS} rounds (the default is 5000)` };
    }
    return { kind: m[1] === '5' ? 'sha256crypt' : 'sha512crypt' };
  }
  if (hash.startsWith('{SHA}')) return SHA.test(hash) ? { kind: 'sha' } : { problem: 'malformed {SHA} hash' };
  if (hash.startsWith('{SSHA}')) {
    return SSHA.test(hash) && Buffer.from(hash.slice(6), 'base64').length > 20 ? { kind: 'ssha' } : { problem: 'malformed {SSHA} hash' };
  }
  if (hash.startsWith('{PLAIN}')) {
    return { kind: 'plain', warning: 'plain-text password ({PLAIN}); accepted as nginx does, but anyone who reads the file has it: use bcrypt (htpasswd -B)' };
  }
  if (DES.test(hash)) return { kind: 'des', warning: 'DES crypt hash: only the first 8 characters of the password count; use bcrypt (htpasswd -B)' };
  if (/^\$[a-z0-9]+\$/i.test(hash)) return { problem: `unsupported crypt scheme ${hash.slice(0, hash.indexOf('$', 1) + 1)}` };
  return { problem: 'unsupported hash (plain text without {PLAIN}, or an unknown scheme)' };
}

/** Verifies one password (raw bytes as sent by the client) against one stored hash. */
export interface PasswordVerifier {
  verify(kind: HashKind, password: Buffer, hash: string): Promise<boolean>;
}

type BcryptVerify = (password: Buffer, hash: string) => Promise<boolean>;
let bcryptImpl: Promise<{ name: string; verify: BcryptVerify }> | undefined;

/** @node-rs/bcrypt (async verify runs on the libuv threadpool); bcryptjs async if the native module fails. */
function loadBcrypt(): Promise<{ name: string; verify: BcryptVerify }> {
  bcryptImpl ??= import('@node-rs/bcrypt').then(
    (m) => ({ name: '@node-rs/bcrypt', verify: (pw: Buffer, h: string) => m.verify(pw, h) }),
    async () => {
      const m = (await import('bcryptjs')).default;
      return { name: 'bcryptjs', verify: (pw: Buffer, h: string) => m.compare(pw.toString('utf8'), h) };
    });
  return bcryptImpl;
}

/** Name of the bcrypt implementation in use (for a startup log line). */
export async function bcryptBackend(): Promise<string> {
  return (await loadBcrypt()).name;
}

function equalBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
const equalStrings = (a: string, b: string): boolean => equalBytes(Buffer.from(a), Buffer.from(b));

export const defaultVerifier: PasswordVerifier = {
  async verify(kind, password, hash) {
    switch (kind) {
      case 'bcrypt':
        return (await loadBcrypt()).verify(password, hash);
      case 'apr1':
      case 'md5crypt':
        // The libraries hash each char's low byte, so hand them the bytes as a latin1 string.
        return equalStrings(md5Crypt(password.toString('latin1'), hash), hash);
      case 'des':
        return equalStrings(desCrypt(password.toString('latin1'), hash.slice(0, 2)), hash);
      case 'sha256crypt':
      case 'sha512crypt':
        // In a worker thread; unixcrypt hashes the string's UTF-8 bytes: the client's bytes whenever they are UTF-8.
        return verifyShaCrypt(password, hash);
      case 'sha':
        return equalStrings('{SHA}' + createHash('sha1').update(password).digest('base64'), hash);
      case 'ssha': {
        const raw = Buffer.from(hash.slice(6), 'base64');
        return equalBytes(createHash('sha1').update(password).update(raw.subarray(20)).digest(), raw.subarray(0, 20));
      }
      case 'plain':
        return equalBytes(password, Buffer.from(hash.slice(7)));
    }
  },
};

// Compared against for unknown users, so they cost what a wrong password costs. None matches anything.
const DUMMY_BCRYPT_TAIL = 'aOTz/n6sZCPyHqteHTLpluEbcXdfNfgNiQxTKDCNLv/d8dNPcAjCi';
const DUMMY: Record<Exclude<HashKind, 'bcrypt'>, string> = {
  apr1: '$apr1$KlIMhc2i$SWB.hDJncSLEE0u/eGanN.',
  md5crypt: '$1$Qm4xGz1a$ZdZrnPKv6axqC1.O.ZdQO.',
  sha256crypt: '$5$Qm4xGz1aB2c$teoF2oyTFyw2nDb0CxFdeu3dJfCvuyte91t6S86t1r6',
  sha512crypt: '$6$Qm4xGz1aB2c$Ya2WhgWowQILR/m4O8Qfybv0Cbk84pGmTdAccT.0rfw6Ai5GkEE/4ZDexCZO9P8zfKpd3wFRXeI8KzTyLNYTL/',
  des: 'LaWsAJiKlZ30A',
  sha: '{SHA}oojkWYR5w0/ypvNeD4Jt8TXwriI=',
  ssha: '{SSHA}ojK4vHIAffS6TFql9ywAlA4G0X2LHTpc',
  plain: '{PLAIN}\u0000never-a-password',
};

/** A dummy of the most common kind (and bcrypt cost) among `entries`; bcrypt cost 10 when there are none. */
export function dummyFor(entries: Iterable<{ kind: HashKind; hash: string }>): { kind: HashKind; hash: string } {
  const counts = new Map<string, number>();
  for (const e of entries) {
    const key = e.kind === 'bcrypt' ? 'bcrypt:' + e.hash.slice(4, 6) : e.kind;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let best = 'bcrypt:10', n = 0;
  for (const [k, c] of counts) if (c > n) [best, n] = [k, c];
  if (best.startsWith('bcrypt:')) return { kind: 'bcrypt', hash: `$2y$${best.slice(7)}$${DUMMY_BCRYPT_TAIL}` };
  const kind = best as Exclude<HashKind, 'bcrypt'>;
  return { kind, hash: DUMMY[kind] };
}
