// Bounded waits for tests: every wait has a deadline and, when it passes, fails with a message naming
// what was awaited. Waits are on events (nextEvent, withDeadline) or on short polls of a condition
// (waitUntil), never on bare sleeps. Timers are cleared when the wait ends; listeners are removed.
import type { EventEmitter } from 'node:events';

/** Default deadline: long enough for a loaded CI machine, short enough to fail well before node:test's. */
export const DEFAULT_TIMEOUT_MS = 10_000;

export class WaitTimeoutError extends Error {
  constructor(what: string, ms: number, detail?: string) {
    super(`timed out after ${ms} ms waiting for ${what}${detail ? `: ${detail}` : ''}`);
    this.name = 'WaitTimeoutError';
  }
}

export interface WaitOptions {
  /** Deadline in ms (default DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Poll interval in ms for waitUntil (default 10). */
  intervalMs?: number;
  /** Appended to the timeout message (e.g. the state seen last). */
  detail?: () => string;
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Polls `pred` (sync or async) every `intervalMs` until it returns a truthy value, which it resolves with.
 * Rejects with a WaitTimeoutError naming `what` once `timeoutMs` has passed; an error thrown by `pred`
 * rejects at once.
 */
export async function waitUntil<T>(what: string, pred: () => T | Promise<T>, o: WaitOptions = {}): Promise<Truthy<T>> {
  const ms = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v as Truthy<T>;
    const left = deadline - Date.now();
    if (left <= 0) throw new WaitTimeoutError(what, ms, o.detail?.());
    await new Promise((r) => setTimeout(r, Math.min(left, o.intervalMs ?? 10)));
  }
}

/** Resolves or rejects as `p` does, or rejects with a WaitTimeoutError naming `what` after `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string, detail?: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeoutError(what, ms, detail?.())), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/**
 * The arguments of the next `event` on `emitter` for which `match` (default: any) is true, within the
 * deadline. An 'error' event rejects, unless `event` is 'error' itself. The listeners are removed either way.
 */
export function nextEvent<A extends unknown[] = any[]>(emitter: EventEmitter, event: string, what: string,
  o: { timeoutMs?: number; match?: (...args: A) => boolean; detail?: () => string } = {}): Promise<A> {
  const ms = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise<A>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      if (event !== 'error') emitter.off('error', onError);
    };
    const onEvent = (...args: unknown[]) => {
      let hit: boolean;
      try { hit = o.match ? o.match(...(args as A)) : true; } catch (err) { done(); reject(err); return; }
      if (hit) { done(); resolve(args as A); }
    };
    const onError = (err: unknown) => { done(); reject(err); };
    const timer = setTimeout(() => { done(); reject(new WaitTimeoutError(what, ms, o.detail?.())); }, ms);
    emitter.on(event, onEvent);
    if (event !== 'error') emitter.on('error', onError);
  });
}
