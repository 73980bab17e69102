// `berth gc [--config FILE] [--dry-run] [--delete-untagged] [--upload-idle D] [--force]`: garbage-collects
// the storage named by registry.storage of the config (core/gc.ts): unreferenced blobs and dead upload
// sessions. Refuses while a writable berth holds a fresh writer lease on that storage (core/writer-lease.ts)
// unless --force. Exit codes: 0, 1 failure, 2 usage.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { loadConfig } from '../config/load.js';
import { parseDuration } from '../config/values.js';
import { createLogger } from '../log/logger.js';
import { markAndSweep } from '../registry/core/gc.js';
import { liveWriters } from '../registry/core/writer-lease.js';
import { createDriver } from '../registry/storage/factory.js';
import { findConfig } from './config-path.js';

export interface GcCommandIo {
  stdout: { write(s: string): unknown };
  stderr: NodeJS.WritableStream;
  /** Base for a relative --config. Default process.cwd(). */
  cwd?: string;
  /** Environment for config overrides (REGISTRY_*) and REGISTRY_CONFIGURATION_PATH. Default process.env. */
  env?: Record<string, string | undefined>;
  /** Probe for /etc/docker/registry/config.yml (config discovery). Default existsSync. */
  exists?(path: string): boolean;
}

/** Upload sessions nobody wrote to for this long are dead (unless proxy.readtimeout is longer: see below). */
const DEFAULT_UPLOAD_IDLE_MS = 3600_000;

const USAGE = `usage: berth gc [--config FILE] [--dry-run] [--delete-untagged] [--upload-idle DURATION] [--force]
  Deletes blob data that no manifest references (mark and sweep over every repository of
  registry.storage in FILE; without --config, as serve: $REGISTRY_CONFIGURATION_PATH, else
  /etc/docker/registry/config.yml if it exists, else ./gateway.yml), and upload sessions nobody has written to for
  --upload-idle. Index children, their blobs and referrers (manifests whose subject is kept) are
  always kept.
  --dry-run          report what would be deleted, delete nothing
  --delete-untagged  also delete manifests not reachable from any tag (through indexes and referrers)
  --upload-idle D    delete upload sessions not modified for D (Go duration, e.g. 30m, 2h; default 1h,
                     or twice proxy.readtimeout when that is longer, so no request can still be writing)
  --force            run even while a writable berth serves this storage (DANGEROUS: blobs pushed
                     during the run can be deleted; stop the server or make it read-only instead)
  exit: 0 done, 1 refused or failed, 2 usage error`;

export async function runGcCommand(argv: string[], io: GcCommandIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        'dry-run': { type: 'boolean', short: 'n' },
        'delete-untagged': { type: 'boolean', short: 'm' },
        'upload-idle': { type: 'string' },
        force: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr.write(`berth gc: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) { io.stdout.write(`${USAGE}\n`); return 0; }
  let uploadIdle: number | undefined;
  if (values['upload-idle'] !== undefined) {
    const d = parseDuration(values['upload-idle']);
    if ('error' in d) {
      io.stderr.write(`berth gc: --upload-idle: ${d.error}\n${USAGE}\n`);
      return 2;
    }
    uploadIdle = d.ms;
  }
  const dryRun = values['dry-run'] ?? false;
  const env = io.env ?? process.env;
  const where = findConfig({ argument: values.config, env, exists: io.exists ?? existsSync });
  const file = resolve(io.cwd ?? process.cwd(), where.file);

  let config;
  try {
    config = await loadConfig(file, { env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`berth gc: invalid configuration\n${err.message}\n`);
    return 1;
  }
  const log = createLogger({ level: 'warn', destination: io.stderr });   // stdout carries the report
  try {
    const driver = createDriver(config.registry.storage.driver, config.registry.storage.parameters, log);
    const writers = await liveWriters(driver);
    if (writers.length) {
      const who = writers.map((w) => `${w.holder} (heartbeat ${Math.max(0, Math.round(w.ageMs / 1000))} s ago)`).join(', ');
      if (!values.force && !dryRun) {
        io.stderr.write(`berth gc: refusing to run: a registry is writing to this storage: ${who}\n`
          + 'Stop it or set registry.storage.maintenance.readonly.enabled: true, then run gc again '
          + '(--force overrides; dangerous: blobs pushed meanwhile may be deleted).\n');
        return 1;
      }
      io.stderr.write(`berth gc: warning: a registry is writing to this storage: ${who}${dryRun ? ' (dry run)' : ' (--force)'}\n`);
    }
    const idle = uploadIdle ?? Math.max(DEFAULT_UPLOAD_IDLE_MS, 2 * config.proxy.readtimeout);
    const r = await markAndSweep(driver, {
      dryRun, deleteUntagged: values['delete-untagged'] ?? false, log, uploadsModifiedBefore: new Date(Date.now() - idle),
    });
    const verb = dryRun ? 'would delete' : 'deleted';
    for (const m of r.deletedManifests) io.stdout.write(`${verb} manifest ${m.repository}@${m.digest}\n`);
    for (const d of r.deletedBlobs) io.stdout.write(`${verb} blob ${d}\n`);
    for (const u of r.deletedUploads) io.stdout.write(`${verb} upload ${u.repository} ${u.id}\n`);
    io.stdout.write(`gc${dryRun ? ' (dry run)' : ''}: ${r.repositories} repositories, ${r.manifests} manifests, `
      + `${r.markedBlobs} blobs marked; ${verb} ${r.deletedManifests.length} manifests, ${r.deletedBlobs.length} blobs, `
      + `${r.deletedUploads.length} upload sessions\n`);
    return 0;
  } catch (err) {
    log.error({ err }, 'gc failed');
    io.stderr.write(`berth gc: failed: ${(err as Error).message}\n`);
    return 1;
  }
}
