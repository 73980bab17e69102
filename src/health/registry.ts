// Schedules health checks on unref'd timers and keeps each one's verdict: a check turns unhealthy
// after `threshold` consecutive failures (0 and 1: the first) and healthy on its next success.
// It knows no HTTP: the pipeline asks unhealthy() and answers with the failing checks' names only
// (stable names such as `http_0`: never a URI, path or address); the debug server shows status().
import type { HealthConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { fileCheck, httpCheck, redactURI, tcpCheck, type Check } from './checks.js';

/** The registry's storage probe (RegistryApp.storage): it lists the store's root within the signal. */
export interface StorageProbe { name: string; check(o: { signal: AbortSignal }): Promise<void> }

/** How long one storage probe may take before it counts as a failure. */
const STORAGE_CHECK_TIMEOUT_MS = 10_000;

export interface HealthRegistry {
  /** Check name → reason, for every check that is currently unhealthy ({} when all pass). The reasons name
   *  what was checked (redacted URIs, paths, addresses): for the debug listener and logs, never the public port. */
  status(): Record<string, string>;
  /** The names of the failing checks, in registration order: all a public answer may say. */
  failing(): string[];
  unhealthy(): boolean;
  /**
   * Adds a check; it runs at once and then every `interval` ms (after the previous run ends). `name` is
   * public (it appears in the 503); `target` (what is checked, already redacted) only in logs.
   */
  register(name: string, check: Check, o: { interval: number; threshold: number; target?: string }): void;
  /** Stops every timer. Idempotent. */
  stop(): void;
}

export function createHealthRegistry(log: Logger): HealthRegistry {
  const hlog = log.child({ module: 'health' });
  const failing = new Map<string, string>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const order: string[] = [];

  function register(name: string, check: Check, o: { interval: number; threshold: number; target?: string }): void {
    let failures = 0;
    order.push(name);
    const where = o.target === undefined ? {} : { target: o.target };
    const run = async () => {
      try {
        await check();
        if (failing.delete(name)) hlog.info({ check: name, ...where }, 'health check passes again');
        failures = 0;
      } catch (err) {
        failures++;
        const reason = (err as Error)?.message ?? String(err);
        if (failures >= Math.max(1, o.threshold)) {
          if (failing.get(name) !== reason) hlog.warn({ check: name, ...where, reason, failures }, 'health check failing');
          failing.set(name, reason);
        }
      }
      if (stopped) return;
      const t = setTimeout(() => { timers.delete(t); void run(); }, o.interval);
      t.unref();
      timers.add(t);
    };
    void run();
  }

  return {
    status: () => Object.fromEntries(order.filter((n) => failing.has(n)).map((n) => [n, failing.get(n)!])),
    failing: () => order.filter((n) => failing.has(n)),
    unhealthy: () => failing.size > 0,
    register,
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}

/**
 * Registers the checks `cfg` names. Names are stable and say nothing about the target: `storagedriver_<driver>`
 * (Distribution's), then `file_<i>`, `http_<i>`, `tcp_<i>` by position in their list (Distribution names them
 * by path, URI and address, which put credentials and paths in the unauthenticated 503).
 */
export function startHealthChecks(cfg: HealthConfig | undefined, storage: StorageProbe | undefined, log: Logger): HealthRegistry {
  const h = createHealthRegistry(log);
  if (!cfg) return h;
  const sd = cfg.storagedriver;
  if (sd.enabled && storage) {
    h.register(`storagedriver_${storage.name}`, async () => {
      const signal = AbortSignal.timeout(STORAGE_CHECK_TIMEOUT_MS);
      await storage.check({ signal }).catch((err: unknown) => {
        // A stalled store: say so, rather than the abort's "This operation was aborted".
        if (signal.aborted) throw new Error(`storage: no answer within ${STORAGE_CHECK_TIMEOUT_MS} ms`, { cause: err });
        throw err;
      });
    }, sd);
  }
  cfg.file.forEach((f, i) => h.register(`file_${i}`, fileCheck(f.file), { interval: f.interval, threshold: 0, target: f.file }));
  cfg.http.forEach((c, i) => h.register(`http_${i}`, httpCheck(c), { ...c, target: redactURI(c.uri) }));
  cfg.tcp.forEach((c, i) => {
    const addr = `${c.addr.host.includes(':') ? `[${c.addr.host}]` : c.addr.host}:${c.addr.port}`;
    h.register(`tcp_${i}`, tcpCheck({ ...c.addr, timeout: c.timeout }), { ...c, target: addr });
  });
  return h;
}
