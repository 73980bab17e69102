// A real S3 store for tests: Ceph's RADOS Gateway on 127.0.0.1:7480, started by scripts/s3-ceph.sh (a copy of
// ../shared/services/s3-ceph.sh; S3_CEPH_SCRIPT overrides it). One Ceph serves every test process of a run:
// the first process that needs it runs `start`, which the script serialises with flock, so the others wait and
// then find it healthy (`start` returns at once then). Tests never stop it: .ci/run stops it when the run ends
// (trap), and on a workstation `scripts/s3-ceph.sh stop` does. Each test gets its own key prefix
// (rootdirectory `/t-<random>`) in the one bucket, and deletes it afterwards, so tests do not interfere.
// Outside CI a store that cannot start (no root for apt-get, no ceph packages) skips; under CI=true it fails.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withDeadline } from './wait.js';

const SCRIPT = process.env.S3_CEPH_SCRIPT ?? fileURLToPath(new URL('../../scripts/s3-ceph.sh', import.meta.url));
/** Cold start measured at ~7 s (bluestore) on a loaded machine; the apt-get install the script may do first is
 *  not bounded by this (under CI .ci/run has installed the packages already). */
const START_TIMEOUT_MS = 240_000;

export interface S3Settings { endpoint: string; accessKey: string; secretKey: string; bucket: string; region: string }

let started: Promise<S3Settings> | undefined;

/** The running store's settings: S3_* from the environment when all are set, else `s3-ceph.sh start` (once per process). */
export function s3Store(): Promise<S3Settings> {
  started ??= (async () => {
    const e = process.env;
    if (e.S3_ENDPOINT && e.S3_ACCESS_KEY && e.S3_SECRET_KEY && e.S3_BUCKET) {
      return { endpoint: e.S3_ENDPOINT, accessKey: e.S3_ACCESS_KEY, secretKey: e.S3_SECRET_KEY, bucket: e.S3_BUCKET, region: e.S3_REGION ?? 'us-east-1' };
    }
    if (!existsSync(SCRIPT)) throw new Error(`S3 test store: ${SCRIPT} not found (set S3_CEPH_SCRIPT)`);
    // The script's default store, bluestore on a sparse 4 GiB file: ~7 s to start here (memstore ~5 s), but its RAM
    // stays ~300 MiB; memstore keeps every object in RAM and its 1 GiB default filled up (OSD full: requests hang).
    const env = { ...process.env };
    const run = promisify(execFile)(SCRIPT, ['start'], { env, maxBuffer: 1 << 20 });
    const { stdout } = await withDeadline(run, START_TIMEOUT_MS, `${SCRIPT} start`).catch((err: Error & { stderr?: string }) => {
      throw new Error(`S3 test store did not start: ${err.message}\n${err.stderr ?? ''}`);
    });
    const kv = Object.fromEntries(stdout.split('\n').map((l) => l.match(/^(S3_[A-Z_]+)=(.*)$/)).filter((m) => m).map((m) => [m![1], m![2]]));
    if (!kv.S3_ENDPOINT || !kv.S3_ACCESS_KEY || !kv.S3_SECRET_KEY || !kv.S3_BUCKET) throw new Error(`S3 test store: unexpected output of start:\n${stdout}`);
    return { endpoint: kv.S3_ENDPOINT, accessKey: kv.S3_ACCESS_KEY, secretKey: kv.S3_SECRET_KEY, bucket: kv.S3_BUCKET, region: kv.S3_REGION ?? 'us-east-1' };
  })();
  return started;
}

/**
 * For `describe(name, { skip: await s3Skip() }, …)`: false when the store runs (starting it if needed); outside
 * CI the reason it cannot start; under CI=true the start error is thrown (nothing may skip there).
 */
export async function s3Skip(): Promise<string | false> {
  try {
    await s3Store();
    return false;
  } catch (err) {
    if (process.env.CI === 'true') throw err;
    return `no S3 test store (Ceph RGW): ${(err as Error).message.split('\n')[0]}`;
  }
}

/** A fresh key prefix for one test (Distribution's rootdirectory): `/t-<random>`. */
export function s3Prefix(tag = 't'): string {
  return `/${tag}-${randomBytes(6).toString('hex')}`;
}

/** registry.storage.s3 parameters for the test store under `rootdirectory`. */
export function s3Parameters(s: S3Settings, rootdirectory: string): Record<string, string | boolean> {
  return {
    region: s.region, regionendpoint: s.endpoint, bucket: s.bucket, accesskey: s.accessKey, secretkey: s.secretKey,
    rootdirectory, secure: s.endpoint.startsWith('https:'),
  };
}
