// Schedules health checks on unref'd timers and keeps each one's verdict: a check turns unhealthy
// after `threshold` consecutive failures (0 and 1: the first) and healthy on its next success.
// It knows no HTTP: the pipeline asks unhealthy(), the debug server shows status().
import type { HealthConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { fileCheck, httpCheck, tcpCheck, type Check } from './checks.js';

/** The registry's storage probe (RegistryApp.storage): it lists the store's root within the signal. */
export interface StorageProbe { name: string; check(o: { signal: AbortSignal }): Promise<void> }

/** How long one storage probe may take before it counts as a failure. */
const STORAGE_CHECK_TIMEOUT_MS = 10_000;

export interface HealthRegistry {
  /** Check name → reason, for every check that is currently unhealthy ({} when all pass). */
  status(): Record<string, string>;
  unhealthy(): boolean;
  /** Adds a check; it runs at once and then every `interval` ms (after the previous run ends). */
  register(name: string, check: Check, o: { interval: number; threshold: number }): void;
  /** Stops every timer. Idempotent. */
  stop(): void;
}

export function createHealthRegistry(log: Logger): HealthRegistry {
  const hlog = log.child({ module: 'health' });
  const failing = new Map<string, string>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  function register(name: string, check: Check, o: { interval: number; threshold: number }): void {
    let failures = 0;
    const run = async () => {
      try {
        await check();
        if (failing.delete(name)) hlog.info({ check: name }, 'health check passes again');
        failures = 0;
      } catch (err) {
        failures++;
        const reason = (err as Error)?.message ?? String(err);
        if (failures >= Math.max(1, o.threshold)) {
          if (failing.get(name) !== reason) hlog.warn({ check: name, reason, failures }, 'health check failing');
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
    status: () => Object.fromEntries(failing),
    unhealthy: () => failing.size > 0,
    register,
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}

/** Registers the checks `cfg` names, with Distribution's check names (storagedriver_<driver>, file path, uri, addr). */
export function startHealthChecks(cfg: HealthConfig | undefined, storage: StorageProbe | undefined, log: Logger): HealthRegistry {
  const h = createHealthRegistry(log);
  if (!cfg) return h;
  const sd = cfg.storagedriver;
  if (sd.enabled && storage) {
    h.register(`storagedriver_${storage.name}`, () => storage.check({ signal: AbortSignal.timeout(STORAGE_CHECK_TIMEOUT_MS) }), sd);
  }
  for (const f of cfg.file) h.register(f.file, fileCheck(f.file), { interval: f.interval, threshold: 0 });
  for (const c of cfg.http) h.register(c.uri, httpCheck(c), c);
  for (const c of cfg.tcp) {
    h.register(`${c.addr.host.includes(':') ? `[${c.addr.host}]` : c.addr.host}:${c.addr.port}`,
      tcpCheck({ ...c.addr, timeout: c.timeout }), c);
  }
  return h;
}
