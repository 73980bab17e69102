// HTTP Basic authentication against an htpasswd file: parses `Authorization: Basic …`, verifies
// (bcrypt off the event loop), caches verified credentials briefly and slows repeated failures.
// Every authenticated user gets every access (nginx auth_basic semantics). Never logs credentials.
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import { AnonymousAccess, basicChallenge, ChallengeError, type Access, type AccessController, type ChallengeReason, type Grant } from './access.js';
import { CredentialCache, type CredentialCacheOptions } from './credential-cache.js';
import { FailureThrottle, type FailureThrottleOptions } from './failure-throttle.js';
import { bcryptBackend, defaultVerifier, HtpasswdFile, type PasswordVerifier } from './htpasswd.js';

export interface HtpasswdAccessOptions {
  /** Absolute path of the htpasswd file. */
  path: string;
  realm: string;
  log: Logger;
  /** Cache of verified credentials (default on: TTL 60 s, 1000 entries). `false` disables it. */
  cache?: boolean | CredentialCacheOptions;
  /** Failure slow-down per client address (default on). `false` disables it. */
  throttle?: boolean | FailureThrottleOptions;
  /** Min ms between stats of the file (default 0: every request; concurrent requests share one stat). */
  checkIntervalMs?: number;
  /** Longest Authorization header accepted (default 8192 chars); longer ones are a 401. */
  maxHeaderLength?: number;
  // Injection points for tests (counting verifier, clock, delay recorder).
  verifier?: PasswordVerifier;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const BASIC = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `{ user, password }` from an Authorization header value, or null if it is not valid Basic. */
export function parseBasicAuthorization(value: string, maxLength = 8192): { user: string; password: Buffer } | null {
  if (value.length > maxLength) return null;
  const m = BASIC.exec(value.trim());
  if (!m || m[1].replace(/=+$/, '').length % 4 === 1) return null;
  const raw = Buffer.from(m[1], 'base64');
  const colon = raw.indexOf(0x3a);
  if (colon <= 0) return null;
  let user: string;
  try {
    user = utf8.decode(raw.subarray(0, colon));
  } catch {
    return null;
  }
  return { user, password: raw.subarray(colon + 1) };
}

export class HtpasswdAccessController implements AccessController {
  readonly challenge: string;
  private readonly cache: CredentialCache | null;
  private readonly throttle: FailureThrottle | null;
  private readonly verifier: PasswordVerifier;
  private readonly sleep: (ms: number) => Promise<void>;

  /** Loads the file (rejects with HtpasswdError listing every bad line, or the fs error) and builds the controller. */
  static async create(o: HtpasswdAccessOptions): Promise<HtpasswdAccessController> {
    const log = o.log.child({ module: 'auth' });
    const file = await HtpasswdFile.load(o.path, { log, checkIntervalMs: o.checkIntervalMs, now: o.now });
    log.info({ file: o.path, users: file.latest.users.size, bcrypt: await bcryptBackend(), cache: o.cache !== false },
      'htpasswd authentication enabled');
    return new HtpasswdAccessController(file, { ...o, log });
  }

  constructor(readonly file: HtpasswdFile, private readonly o: HtpasswdAccessOptions) {
    this.challenge = basicChallenge(o.realm);
    this.cache = o.cache === false ? null
      : new CredentialCache({ now: o.now, ...(typeof o.cache === 'object' ? o.cache : {}) });
    this.throttle = o.throttle === false ? null
      : new FailureThrottle({ now: o.now, ...(typeof o.throttle === 'object' ? o.throttle : {}) });
    this.verifier = o.verifier ?? defaultVerifier;
    this.sleep = o.sleep ?? ((ms) => sleepMs(ms));
    file.onReload(() => this.cache?.clear());
  }

  async authorize(req: IncomingMessage, _access: Access[]): Promise<Grant> {
    const header = req.headers.authorization;
    if (header === undefined || header === '') throw new ChallengeError(this.challenge, 'missing');
    const table = await this.file.current();
    const cached = this.cache?.get(header);
    if (cached !== undefined) return { user: cached };

    const addr = req.socket?.remoteAddress ?? 'unknown';
    const delay = this.throttle?.delayFor(addr) ?? 0;
    if (delay > 0) await this.sleep(delay);

    const creds = parseBasicAuthorization(header, this.o.maxHeaderLength);
    if (!creds) return this.fail(addr, 'malformed');
    const entry = table.users.get(creds.user);
    if (!entry) {
      await this.verifier.verify(table.dummy.kind, creds.password, table.dummy.hash);
      return this.fail(addr, 'invalid');
    }
    if (!(await this.verifier.verify(entry.kind, creds.password, entry.hash))) return this.fail(addr, 'invalid', entry.user);
    // The file may have been replaced while we were verifying: only the newest table counts.
    if (this.file.latest.users.get(entry.user)?.hash !== entry.hash) return this.fail(addr, 'invalid', entry.user);
    if (this.file.latest.generation === table.generation) this.cache?.set(header, entry.user);
    return { user: entry.user };
  }

  close(): void {
    this.file.close();
    this.cache?.clear();
  }

  private fail(addr: string, reason: ChallengeReason, knownUser?: string): never {
    if (this.throttle?.recordFailure(addr)) {
      this.o.log.warn({ addr }, 'repeated authentication failures; slowing down this address');
    }
    throw new ChallengeError(this.challenge, reason, knownUser);
  }
}

/**
 * The gateway's entry point: htpasswd Basic auth when configured, otherwise anonymous access.
 * Rejects at startup with HtpasswdError (every bad line, `file:line  message`) or the fs error.
 */
export async function createAccessController(
  auth: { htpasswd?: { path: string; realm: string; cache?: boolean } } | undefined, log: Logger,
): Promise<AccessController> {
  if (!auth?.htpasswd) return new AnonymousAccess();
  return HtpasswdAccessController.create({ ...auth.htpasswd, log });
}
