// Rate-limited log lines, for events a client can cause at will (TLS handshake failures, plain HTTP on the
// TLS port): at most one line per interval per key; the next line says how many were left out.
import type { Logger } from './logger.js';

export interface RateLimitedLog {
  /** Logs at `level` unless a line with this key went out less than the interval ago (then it is counted). */
  (level: 'warn' | 'info' | 'error', key: string, fields: Record<string, unknown>, msg: string): void;
}

export function rateLimitedLog(log: Logger, intervalMs = 10_000, now: () => number = Date.now): RateLimitedLog {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (level, key, fields, msg) => {
    const t = now();
    const s = last.get(key);
    if (s && t - s.at < intervalMs) { s.suppressed++; return; }
    log[level]({ ...fields, ...(s?.suppressed ? { suppressed: s.suppressed } : {}) }, msg);
    if (last.size > 64 && !s) last.clear();   // keys are a handful of error codes; never let them grow
    last.set(key, { at: t, suppressed: 0 });
  };
}
