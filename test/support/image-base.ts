// A buildah image store kept across test runs, and in it a stand-in for the official Node 24 image built
// offline: Debian bookworm minbase (mmdebstrap, from the Debian mirror), this test process's own Node 24
// binary, the npm package (from the npm registry), a `node` user with uid 1000 and an /etc/ssl/certs mount
// point. The base is tagged by a hash of its recipe, so a second run skips mmdebstrap. It never touches the
// machine's default containers storage, and removes only the images and containers it names.
import { createHash } from 'node:crypto';
import { readFile, writeFile, mkdir, rm, mkdtemp } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunOptions, type RunResult } from './clients.js';

/** Debian suite and variant of the base (the official image is bookworm-slim). */
const SUITE = 'bookworm';
const MIRROR = process.env.BERTH_TEST_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
/** The npm the base carries (the official Node 24 image ships npm 11). */
const NPM_SPEC = 'npm@11';
export const BASE_REPO = 'localhost/berth-test-base';

/**
 * Runs inside mmdebstrap's customize hook, `$1` the root: what the official image adds to debian:bookworm-slim
 * (node and npm under /usr/local, user node 1000:1000). NODE and NPM_TGZ are replaced by quoted paths.
 */
const CUSTOMIZE = `set -eu
root="$1"
install -m 0755 NODE "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
tar -xzf NPM_TGZ --no-same-owner -C "$root/usr/local/lib/node_modules"
mv "$root/usr/local/lib/node_modules/package" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
echo 'node:x:1000:1000::/home/node:/bin/bash' >> "$root/etc/passwd"
echo 'node:x:1000:' >> "$root/etc/group"
echo 'node:*:19000:0:99999:7:::' >> "$root/etc/shadow"
install -d -o 1000 -g 1000 "$root/home/node"
mkdir -p "$root/etc/ssl/certs"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
`;

const sq = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

export interface ImageStore {
  root: string;
  runroot: string;
  driver: string;
  /** buildah with this store's --root/--runroot/--storage-driver. */
  buildah(args: string[], o?: RunOptions): Promise<RunResult>;
  /** The same flags, for a buildah spawned by the caller. */
  flags: string[];
}

/**
 * The persistent store: $BERTH_IMAGE_TEST_STORE, else ~/.cache/berth-image-test. overlay (what buildah uses on
 * these machines as root), or $BERTH_IMAGE_TEST_DRIVER (vfs where overlay mounts are not allowed).
 */
export async function openImageStore(): Promise<ImageStore> {
  const dir = process.env.BERTH_IMAGE_TEST_STORE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'berth-image-test');
  const root = join(dir, 'storage'); const runroot = join(dir, 'runroot');
  await mkdir(root, { recursive: true, mode: 0o700 }); await mkdir(runroot, { recursive: true, mode: 0o700 });
  const driver = process.env.BERTH_IMAGE_TEST_DRIVER ?? 'overlay';
  const flags = ['--root', root, '--runroot', runroot, '--storage-driver', driver];
  return { root, runroot, driver, flags, buildah: (args, o) => run('buildah', [...flags, ...args], { timeoutMs: 120_000, ...o }) };
}

/** Image ID of `ref` in the store, or undefined. */
export async function imageId(store: ImageStore, ref: string): Promise<string | undefined> {
  const r = await store.buildah(['images', '--noheading', '--no-trunc', '--format', '{{.ID}}', ref]).catch(() => undefined);
  return r?.stdout.trim().split('\n')[0] || undefined;
}

/** The recipe's hash: the customize script, suite, mirror, npm spec and the Node binary's version. */
function baseKey(): string {
  return createHash('sha256').update(JSON.stringify([CUSTOMIZE, SUITE, 'minbase', MIRROR, NPM_SPEC, process.version, process.arch]))
    .digest('hex').slice(0, 16);
}

export interface TestBase { ref: string; built: boolean; log: string }

/**
 * `localhost/berth-test-base:<hash>`, built now unless the store has it; older tags of the repository are removed
 * (one base kept on disk). Needs root (mmdebstrap's root mode, rootful buildah).
 */
export async function ensureTestBase(store: ImageStore): Promise<TestBase> {
  const ref = `${BASE_REPO}:${baseKey()}`;
  if (await imageId(store, ref)) return { ref, built: false, log: '' };
  const work = await mkdtemp(join(tmpdir(), 'berth-test-base-'));
  let ctr: string | undefined;
  try {
    const packed = JSON.parse((await run('npm', ['pack', NPM_SPEC, '--json', '--pack-destination', work], { timeoutMs: 120_000 })).stdout) as { filename: string }[];
    const script = join(work, 'customize.sh');
    await writeFile(script, CUSTOMIZE.replace('NODE', sq(process.execPath)).replace('NPM_TGZ', sq(join(work, packed[0]!.filename))));
    const tarball = join(work, 'rootfs.tar');
    const mm = await run('mmdebstrap', ['--variant=minbase', '--quiet', `--customize-hook=sh ${sq(script)} "$1"`, SUITE, tarball, MIRROR], { timeoutMs: 600_000 });
    ctr = (await store.buildah(['from', '--name', `berth-test-base-${baseKey()}`, 'scratch'])).stdout.trim();
    await store.buildah(['add', ctr, tarball, '/'], { timeoutMs: 300_000 });
    await store.buildah(['config', '--env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--env', `NODE_VERSION=${process.version.slice(1)}`, '--cmd', 'node', ctr]);
    const check = await store.buildah(['run', '--isolation', 'chroot', ctr, '--', 'sh', '-c', 'node --version && npm --version && id node']);
    await store.buildah(['commit', '--rm', ctr, ref], { timeoutMs: 300_000 });
    ctr = undefined;
    await removeOtherBases(store, ref);
    return { ref, built: true, log: mm.stderr + check.stdout };
  } finally {
    if (ctr) await store.buildah(['rm', ctr]).catch(() => undefined);
    await rm(work, { recursive: true, force: true, maxRetries: 3 });
  }
}

async function removeOtherBases(store: ImageStore, keep: string): Promise<void> {
  const all = (await store.buildah(['images', '--noheading', '--format', '{{.Name}}:{{.Tag}}', BASE_REPO]).catch(() => ({ stdout: '' }))).stdout;
  for (const name of all.split('\n').map((s) => s.trim()).filter((s) => s && s !== keep)) {
    await store.buildah(['rmi', name]).catch(() => undefined);
  }
}

/** The machine's CA bundle (npm inside the build trusts it through NODE_EXTRA_CA_CERTS), or undefined. */
export async function systemCaBundle(): Promise<string | undefined> {
  const f = '/etc/ssl/certs/ca-certificates.crt';
  return (await readFile(f).then(() => f, () => undefined));
}
