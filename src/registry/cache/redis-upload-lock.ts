// The upload lock in redis (core/upload-lock.ts), shared by every replica configured with the same `registry.redis`
// and storage (the key prefix is the descriptor cache's: `<prefix>upload-lock::<repo>::<id>`). One key per held
// session: SET NX PX with a random token, refreshed by its holder every ttl/3, deleted by its holder only (Lua
// compare-and-delete). A holder that dies (kill -9) leaves the key until its TTL runs out (10 s by default).
//
// Bounded: a request waits at most `waitMs` (15 s, longer than the TTL, so a dead holder's lock is always taken
// over within one wait) polling every 50 ms and up to 500 ms, then UploadBusyError (429 + Retry-After). A holder
// whose refresh finds the key gone or taken (it stalled past the TTL) has its operation aborted: UploadBusyError.
// Redis down or slow: the lock is skipped (fail open, as the descriptor cache never fails a request), logged once
// per outage at warn; uploads then are as without redis (see README "S3 storage").
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as Redis from 'redis';
import type { Logger } from '../../log/logger.js';
import { UploadBusyError } from '../core/errors.js';
import type { UploadLock } from '../core/upload-lock.js';
import type { OpOptions } from '../storage/driver.js';
import type { RedisCacheOptions } from './redis.js';

export const UPLOAD_LOCK_TTL_MS = 10_000;
export const UPLOAD_LOCK_WAIT_MS = 15_000;

const REFRESH = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

let redisModule: typeof Redis | undefined;
const redis = (): typeof Redis => (redisModule ??= createRequire(import.meta.url)('redis') as typeof Redis);

export interface RedisUploadLockOptions extends RedisCacheOptions {
  ttlMs?: number;
  waitMs?: number;
}

/** The key's id inside the lock (the session) for errors: "<repo>::<id>" → "<id>". */
const sessionId = (key: string) => key.slice(key.lastIndexOf('::') + 2);

export class RedisUploadLock implements UploadLock {
  private readonly client;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly waitMs: number;
  private readonly cmdMs: number;
  private state: 'connecting' | 'up' | 'down' = 'connecting';
  private closed = false;

  constructor(opts: RedisUploadLockOptions, private readonly log: Logger) {
    this.prefix = `${opts.keyPrefix ?? ''}upload-lock::`;
    this.ttlMs = opts.ttlMs ?? UPLOAD_LOCK_TTL_MS;
    this.waitMs = opts.waitMs ?? UPLOAD_LOCK_WAIT_MS;
    this.cmdMs = opts.writeTimeoutMs && opts.writeTimeoutMs > 0 ? opts.writeTimeoutMs : 500;
    this.client = redis().createClient({
      socket: {
        ...opts.socket,
        connectTimeout: opts.dialTimeoutMs && opts.dialTimeoutMs > 0 ? opts.dialTimeoutMs : 1000,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), 2000) + Math.floor(Math.random() * 50),
      },
      ...(opts.password ? { password: opts.password } : {}),
      ...(opts.db ? { database: opts.db } : {}),
      disableOfflineQueue: true,
    });
    this.client.on('error', (err: unknown) => this.markDown(err));
    this.client.on('ready', () => {
      if (this.state === 'down') this.log.info('redis upload lock recovered');
      this.state = 'up';
    });
    this.client.connect().catch(() => {});   // never awaited: startup does not wait for redis
  }

  async run<T>(key: string, fn: (signal: AbortSignal | undefined) => Promise<T>, o?: OpOptions): Promise<T> {
    const k = this.prefix + key;
    const token = randomUUID();
    const deadline = Date.now() + this.waitMs;
    let held = false;
    for (let pause = 50; ; pause = Math.min(pause * 2, 500)) {
      o?.signal?.throwIfAborted();
      const r = await this.cmd((c) => c.set(k, token, { NX: true, PX: this.ttlMs }));
      if (r === undefined) break;            // redis unavailable: without the lock
      if (r === 'OK') { held = true; break; }
      const left = deadline - Date.now();
      if (left <= 0) throw new UploadBusyError(sessionId(key), Math.ceil(this.ttlMs / 1000));
      await sleep(Math.min(pause, left), undefined, { signal: o?.signal });
    }
    if (!held) return fn(o?.signal);

    const lost = new AbortController();
    const signal = o?.signal ? AbortSignal.any([o.signal, lost.signal]) : lost.signal;
    let refreshing: Promise<void> | undefined;
    const timer = setInterval(() => {
      refreshing ??= this.cmd((c) => c.eval(REFRESH, { keys: [k], arguments: [token, String(this.ttlMs)] }))
        .then((r) => {
          if (r !== 0) return;   // refreshed, or redis unavailable (then the key may expire: nothing to do about it)
          this.log.warn({ key: k }, 'upload lock lost (its holder stalled past the TTL): the operation is aborted');
          lost.abort(new UploadBusyError(sessionId(key), 1, 'the upload session\'s lock was lost while this request ran'));
        })
        .finally(() => { refreshing = undefined; });
    }, Math.max(1, Math.floor(this.ttlMs / 3)));
    timer.unref();
    try {
      return await fn(signal);
    } catch (err) {
      if (lost.signal.aborted && !o?.signal?.aborted) throw lost.signal.reason as Error;
      throw err;
    } finally {
      clearInterval(timer);
      await refreshing;
      await this.cmd((c) => c.eval(RELEASE, { keys: [k], arguments: [token] }));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.removeAllListeners('ready');
    this.client.on('error', () => {});
    if (this.client.isOpen) this.client.destroy();
  }

  /** One command within the write timeout; undefined when redis is not connected or fails (logged once). */
  private async cmd<T>(f: (c: typeof this.client) => Promise<T>): Promise<T | undefined> {
    if (this.closed || !this.client.isReady) {
      if (this.state === 'up') this.markDown(new Error('redis is not connected'));
      return undefined;   // still connecting at start, or down (logged once)
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis did not answer within ${this.cmdMs} ms`)), this.cmdMs);
    });
    try {
      return await Promise.race([f(this.client), timeout]);
    } catch (err) {
      this.markDown(err);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private markDown(err: unknown): void {
    if (this.state === 'down' || this.closed) return;
    this.state = 'down';
    this.log.warn({ err }, 'redis upload lock unavailable: uploads proceed without the cross-replica lock until it recovers');
  }
}
