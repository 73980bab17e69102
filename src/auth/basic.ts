// HTTP Basic authentication against an htpasswd file: parses `Authorization: Basic …`, verifies
// (bcrypt off the event loop, a bounded number at once: check-gate.ts), caches verified credentials
// briefly, and refuses further guesses once an address or address+user spent its failure budget
// (failure-throttle.ts: 429 with Retry-After, nothing hashed). Every authenticated user gets every access
// (nginx auth_basic semantics). Never logs credentials, nor a user name the table does not know.
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../log/logger.js';
import {
  AnonymousAccess, basicChallenge, ChallengeError, TooManyAttemptsError, type Access, type AccessController,
  type ChallengeReason, type ClientFacts, type Grant,
} from './access.js';
import { CheckRefusedError, PasswordCheckGate, type CheckGateOptions } from './check-gate.js';
import { CredentialCache, type CredentialCacheOptions } from './credential-cache.js';
import { FailureThrottle, type FailureThrottleOptions } from './failure-throttle.js';
import { AccessConfigError, buildAccess, ReloadablePolicy, RulesAccessController, type AccessSection } from './rules-access.js';
import { bcryptBackend, defaultVerifier, HtpasswdFile, type HtpasswdTable, type PasswordVerifier } from './htpasswd.js';

export interface HtpasswdAccessOptions {
  /** Absolute path of the htpasswd file. */
  path: string;
  realm: string;
  log: Logger;
  /** Cache of verified credentials (default on: TTL 60 s, 1000 entries). `false` disables it. */
  cache?: boolean | CredentialCacheOptions;
  /** Failure budgets per address and per address+user (default on). `false` disables them. */
  throttle?: boolean | FailureThrottleOptions;
  /** Password checks at once and waiting (default: half of libuv's pool at once, i.e. 2, 16 waiting, 4 per address).
   *  A number: `concurrency`. */
  checks?: number | CheckGateOptions;
  /** Min ms between stats of the file (default 0: every request; concurrent requests share one stat). */
  checkIntervalMs?: number;
  /** Longest Authorization header accepted (default 8192 chars); longer ones are a 401. */
  maxHeaderLength?: number;
  // Injection points for tests (counting verifier, clock).
  verifier?: PasswordVerifier;
  now?: () => number;
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
  readonly gate: PasswordCheckGate;
  private readonly cache: CredentialCache | null;
  private readonly throttle: FailureThrottle | null;
  private readonly verifier: PasswordVerifier;
  /** Checks in progress by table generation and header value: identical concurrent requests share one. */
  private readonly inflight = new Map<string, { result: Promise<boolean>; waiting: IncomingMessage[] }>();

  /** Loads the file (bad lines are skipped with a `file:line` warning; rejects with the fs error) and builds the controller. */
  static async create(o: HtpasswdAccessOptions): Promise<HtpasswdAccessController> {
    const log = o.log.child({ module: 'auth' });
    const file = await HtpasswdFile.load(o.path, { log, checkIntervalMs: o.checkIntervalMs, now: o.now });
    const ac = new HtpasswdAccessController(file, { ...o, log });
    log.info({ file: o.path, users: file.latest.users.size, bcrypt: await bcryptBackend(), cache: o.cache !== false,
      concurrentChecks: ac.gate.concurrency }, 'htpasswd authentication enabled');
    return ac;
  }

  constructor(readonly file: HtpasswdFile, private readonly o: HtpasswdAccessOptions) {
    this.challenge = basicChallenge(o.realm);
    this.cache = o.cache === false ? null
      : new CredentialCache({ now: o.now, ...(typeof o.cache === 'object' ? o.cache : {}) });
    this.throttle = o.throttle === false ? null
      : new FailureThrottle({ now: o.now, ...(typeof o.throttle === 'object' ? o.throttle : {}) });
    this.gate = new PasswordCheckGate(typeof o.checks === 'number' ? { concurrency: o.checks } : o.checks);
    this.verifier = o.verifier ?? defaultVerifier;
    file.onReload(() => this.cache?.clear());
  }

  async authorize(req: IncomingMessage, _access: Access[], client?: ClientFacts): Promise<Grant> {
    const header = req.headers.authorization;
    if (header === undefined || header === '') throw new ChallengeError(this.challenge, 'missing');
    const table = await this.file.current();
    if (table.closed) throw new ChallengeError(this.challenge, 'closed');   // no hashing: nobody can match
    const cached = this.cache?.get(header);
    if (cached !== undefined) return { user: cached };

    const addr = client?.addr ?? req.socket?.remoteAddress ?? 'unknown';   // what the budgets and the gate key by
    const creds = parseBasicAuthorization(header, this.o.maxHeaderLength);
    const entry = creds ? table.users.get(creds.user) : undefined;
    const wait = this.throttle?.retryAfterMs(addr, creds?.user) ?? 0;
    if (wait > 0) throw new TooManyAttemptsError(Math.ceil(wait / 1000), 'failures', entry?.user);
    if (!creds) return this.fail(addr, 'malformed');

    let ok: boolean;
    try {
      ok = await this.check(header, table, entry, creds.password, addr, req);
    } catch (err) {
      if (err instanceof CheckRefusedError) throw new TooManyAttemptsError(1, 'busy', entry?.user);
      throw err;
    }
    if (!entry) return this.fail(addr, 'invalid', creds.user);
    if (!ok) return this.fail(addr, 'invalid', creds.user, entry.user);
    // The file may have been replaced while we were verifying: only the newest table counts.
    if (this.file.latest.users.get(entry.user)?.hash !== entry.hash) return this.fail(addr, 'invalid', creds.user, entry.user);
    if (this.file.latest.generation === table.generation) this.cache?.set(header, entry.user);
    this.throttle?.recordSuccess(addr, entry.user);
    return { user: entry.user };
  }

  close(): void {
    this.file.close();
    this.cache?.clear();
  }

  /** One password check through the gate (an unknown user against the table's dummy hash), shared by
   *  identical requests that arrive while it runs. */
  private check(header: string, table: HtpasswdTable, entry: { kind: HtpasswdTable['dummy']['kind']; hash: string } | undefined,
    password: Buffer, addr: string, req: IncomingMessage): Promise<boolean> {
    const key = `${table.generation} ${header}`;
    const shared = this.inflight.get(key);
    if (shared) {
      shared.waiting.push(req);
      return shared.result;
    }
    const { kind, hash } = entry ?? table.dummy;
    const waiting = [req];
    // Skipped while queued only if every request waiting for it has gone away.
    const gone = () => waiting.every((r) => r.socket?.destroyed === true);
    const result = this.gate.run(addr, () => this.verifier.verify(kind, password, hash), gone)
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, { result, waiting });
    return result;
  }

  /** Counts the failure (address, and the named user: its budget is kept whether or not the table knows
   *  it) and throws the challenge. `knownUser` is the only name that may be logged. */
  private fail(addr: string, reason: ChallengeReason, user?: string, knownUser?: string): never {
    const started = this.throttle?.recordFailure(addr, user);
    // A user's slow-down is logged with the name only for a user the table knows; for any other name it is logged
    // as the address's. One failure may start both (ThrottleStart 'both'): the address's line is never lost.
    const userLine = (started === 'user' || started === 'both') && knownUser !== undefined;
    if (userLine) {
      this.o.log.warn({ addr, user: knownUser }, 'repeated wrong passwords for this user from this address; further attempts get 429 for a while');
    }
    if (started === 'address' || started === 'both' || (started === 'user' && !userLine)) {
      this.o.log.warn({ addr }, 'repeated authentication failures from this address; further attempts get 429 for a while');
    }
    throw new ChallengeError(this.challenge, reason, knownUser);
  }
}

/**
 * The gateway's entry point: htpasswd Basic auth when configured, otherwise anonymous access; with access rules
 * (auth.access.rules), the rules on top of either (rules-access.ts). Rejects at startup with the fs error, or an
 * AccessConfigError for rules that cannot work (unknown group, unreadable groups file); bad htpasswd lines are
 * skipped, each with a `file:line` warning, and rule warnings are logged.
 */
export async function createAccessController(
  auth: { htpasswd?: { path: string; realm: string; cache?: boolean }; access?: AccessSection } | undefined, log: Logger,
): Promise<AccessController> {
  const built = await buildAccess(auth?.access);
  if (built.errors.length) throw new AccessConfigError(built.errors);
  const authLog = log.child({ module: 'auth' });
  for (const w of built.warnings) authLog.warn({ key: w.path }, w.message);
  const inner = auth?.htpasswd ? await HtpasswdAccessController.create({ ...auth.htpasswd, log }) : undefined;
  if (built.policy.unrestricted) return inner ?? new AnonymousAccess();
  authLog.info({ rules: auth?.access?.rules?.length ?? 0, anonymous: built.policy.anonymous }, 'access rules enabled');
  return new RulesAccessController(new ReloadablePolicy(built.policy, auth?.access), inner, inner?.challenge, authLog);
}
