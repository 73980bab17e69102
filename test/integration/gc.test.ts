// berth gc on real filesystem storage: content is built through the real HTTP API, gc runs on the
// closed storage, and a fresh registry on the same root must still serve every tag completely.
// Covers Distribution's #3178 (children of a tagged index deleted by --delete-untagged), referrers,
// dry runs, the writer lease (refusal while a writable app runs) and the CLI's exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { silentLogger } from '../../src/log/logger.js';
import { runGcCommand } from '../../src/cli/gc-command.js';
import { markAndSweep, type GcResult } from '../../src/registry/core/gc.js';
import { acquireWriterLease, liveWriters } from '../../src/registry/core/writer-lease.js';
import { createDriver } from '../../src/registry/storage/factory.js';
import { pathFor } from '../../src/registry/storage/paths.js';
import { parseDigest } from '../../src/registry/core/digest.js';
import {
  descriptor, makeImageManifest, makeIndex, MT, pushBlob, pushImage, pushManifest, sha256,
  type Descriptor, type PushedImage,
} from '../support/oci-client.js';
import { request } from '../support/http.js';
import { withDeadline } from '../support/wait.js';
import { startRegistry, testRegistryConfig } from '../support/registry-server.js';
import { makeTempDir } from '../support/tmp.js';
import { REPO_ROOT } from '../support/processes.js';

type T = { after(fn: () => Promise<void>): void };
const ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

async function storageRoot(t: T): Promise<string> {
  const dir = await makeTempDir('berth-gc-');
  t.after(() => dir.cleanup());
  return dir.path;
}

function driverFor(root: string) {
  const s = testRegistryConfig({ driver: 'filesystem', root, deleteEnabled: true, readonly: false }).storage;
  return createDriver(s.driver, s.parameters);
}

function gc(root: string, o: { dryRun?: boolean; deleteUntagged?: boolean } = {}): Promise<GcResult> {
  return markAndSweep(driverFor(root), { dryRun: o.dryRun ?? false, deleteUntagged: o.deleteUntagged ?? false, log: silentLogger() });
}

/** Runs fn against a registry on root, closed afterwards (so it holds no lease while gc runs). */
async function withRegistry<R>(root: string, fn: (base: string) => Promise<R>): Promise<R> {
  const reg = await startRegistry({ root });
  try { return await fn(reg.url); } finally { await reg.close(); }
}

/** GETs ref and everything it references (index children recursively, config, layers): all 200, right digests. */
async function pullComplete(base: string, name: string, ref: string): Promise<string[]> {
  const res = await request(`${base}/v2/${name}/manifests/${ref}`, { headers: { accept: ACCEPT } });
  assert.equal(res.status, 200, `GET ${name}:${ref} → ${res.status} ${res.text()}`);
  const digest = sha256(res.body);
  assert.equal(res.headers['docker-content-digest'], digest);
  if (ref.startsWith('sha256:')) assert.equal(digest, ref);
  const m = res.json();
  const seen = [digest];
  for (const c of m.manifests ?? []) seen.push(...await pullComplete(base, name, c.digest));
  for (const b of [...(m.config ? [m.config] : []), ...(m.layers ?? [])]) {
    const blob = await request(`${base}/v2/${name}/blobs/${b.digest}`);
    assert.equal(blob.status, 200, `GET blob ${name}@${b.digest} → ${blob.status}`);
    assert.equal(sha256(blob.body), b.digest);
    seen.push(b.digest);
  }
  return seen;
}

async function status(base: string, method: string, path: string, accept = ACCEPT): Promise<number> {
  return (await request(`${base}${path}`, { method: method, headers: { accept } })).status;
}

/** An image whose layers are given blobs (pushed here) plus a fresh config; by digest or under tag. */
async function pushImageWith(base: string, name: string, layers: Buffer[], ref?: string, subject?: Descriptor) {
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: Math.random() }));
  await pushBlob(base, name, configBytes);
  for (const l of layers) await pushBlob(base, name, l);
  const m = makeImageManifest({ config: descriptor(MT.ociConfig, configBytes), layers: layers.map((l) => descriptor(MT.ociLayer, l)), subject });
  const digest = await pushManifest(base, name, ref ?? sha256(JSON.stringify(m)), m);
  return { digest, config: sha256(configBytes), desc: { mediaType: MT.ociManifest, digest, size: Buffer.byteLength(JSON.stringify(m)) } };
}

const manifestDesc = (img: PushedImage): Descriptor => ({ mediaType: MT.ociManifest, digest: img.digest, size: img.bytes.length });

async function tree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String).sort();
}

test('an unreferenced blob is swept (data and _layers link); referenced blobs are kept', async (t) => {
  const root = await storageRoot(t);
  const loose = Buffer.from('nobody references me');
  const img = await withRegistry(root, async (base) => {
    const i = await pushImage(base, 'gc/simple', 'v1');
    await pushBlob(base, 'gc/simple', loose);
    return i;
  });
  const r = await gc(root);
  assert.deepEqual(r.deletedBlobs, [sha256(loose)]);
  assert.deepEqual(r.deletedManifests, []);
  assert.equal(r.deletedLayerLinks, 1);
  assert.equal(r.markedBlobs, 3);
  const d = parseDigest(sha256(loose));
  assert.ok(!existsSync(join(root, pathFor({ kind: 'blobDir', digest: d }))));
  assert.ok(!existsSync(join(root, pathFor({ kind: 'layerLink', name: 'gc/simple', digest: d }))));
  await withRegistry(root, async (base) => {
    assert.deepEqual(new Set(await pullComplete(base, 'gc/simple', 'v1')), new Set([img.digest, img.config.digest, img.layer.digest]));
    assert.equal(await status(base, 'HEAD', `/v2/gc/simple/blobs/${sha256(loose)}`), 404);
  });
  assert.deepEqual((await gc(root)).deletedBlobs, [], 'a second run finds nothing');
});

test('#3178: a tagged multi-arch index keeps its untagged children and their blobs, with and without --delete-untagged', async (t) => {
  const root = await storageRoot(t);
  await withRegistry(root, async (base) => {
    const amd = await pushImage(base, 'gc/multi');   // by digest: untagged children
    const arm = await pushImage(base, 'gc/multi');
    await pushManifest(base, 'gc/multi', 'latest', makeIndex([manifestDesc(amd), manifestDesc(arm)]), MT.ociIndex);
    const s390 = await pushImage(base, 'gc/multi');   // nested: tag → index → index → image
    const inner = makeIndex([manifestDesc(s390)]);
    const innerDigest = await pushManifest(base, 'gc/multi', sha256(JSON.stringify(inner)), inner, MT.ociIndex);
    await pushManifest(base, 'gc/multi', 'nested', makeIndex([{ mediaType: MT.ociIndex, digest: innerDigest, size: Buffer.byteLength(JSON.stringify(inner)) }]), MT.ociIndex);
  });
  for (const deleteUntagged of [false, true]) {
    const r = await gc(root, { deleteUntagged });
    assert.deepEqual(r.deletedManifests, [], `deleteUntagged=${deleteUntagged}`);
    assert.deepEqual(r.deletedBlobs, [], `deleteUntagged=${deleteUntagged}`);
    assert.equal(r.manifests, 6);
    await withRegistry(root, async (base) => {
      assert.equal((await pullComplete(base, 'gc/multi', 'latest')).length, 1 + 2 * 3);
      assert.equal((await pullComplete(base, 'gc/multi', 'nested')).length, 1 + 1 + 3);
    });
  }
});

test('untagged manifests go only with --delete-untagged: unique blobs swept, shared and cross-repository blobs kept', async (t) => {
  const root = await storageRoot(t);
  const shared = Buffer.from('shared layer'); const unique = Buffer.from('unique layer'); const cross = Buffer.from('cross-repo layer');
  const s = await withRegistry(root, async (base) => {
    const kept = await pushImageWith(base, 'gc/app', [shared], 'v1');
    const untagged = await pushImageWith(base, 'gc/app', [shared, unique, cross]);
    const retagged = await pushImageWith(base, 'gc/app', [Buffer.from('old layer')], 'moving');
    const current = await pushImageWith(base, 'gc/app', [Buffer.from('new layer')], 'moving');
    const other = await pushImageWith(base, 'gc/other', [cross], 'v1');
    return { kept, untagged, retagged, current, other };
  });
  const plain = await gc(root);
  assert.deepEqual(plain.deletedManifests, []);
  assert.deepEqual(plain.deletedBlobs, []);

  const r = await gc(root, { deleteUntagged: true });
  assert.deepEqual(r.deletedManifests.map((m) => `${m.repository}@${m.digest}`).sort(),
    [`gc/app@${s.untagged.digest}`, `gc/app@${s.retagged.digest}`].sort());
  assert.deepEqual([...r.deletedBlobs].sort(), [
    s.untagged.digest, s.untagged.config, sha256(unique), s.retagged.digest, s.retagged.config, sha256('old layer'),
  ].sort());
  await withRegistry(root, async (base) => {
    await pullComplete(base, 'gc/app', 'v1');
    await pullComplete(base, 'gc/app', 'moving');
    await pullComplete(base, 'gc/other', 'v1');
    assert.equal(await status(base, 'GET', `/v2/gc/app/manifests/${s.untagged.digest}`), 404);
    assert.equal(await status(base, 'GET', `/v2/gc/app/manifests/${s.retagged.digest}`), 404);
    assert.equal(await status(base, 'HEAD', `/v2/gc/app/blobs/${sha256(unique)}`), 404);
    assert.equal(await status(base, 'HEAD', `/v2/gc/app/blobs/${sha256(shared)}`), 200);
    assert.equal(await status(base, 'HEAD', `/v2/gc/app/blobs/${sha256(cross)}`), 200, 'still linked, data kept for gc/other');
  });
});

test('referrers of kept manifests (also of index children) are kept; referrers of deleted manifests go', async (t) => {
  const root = await storageRoot(t);
  const s = await withRegistry(root, async (base) => {
    const subject = await pushImageWith(base, 'gc/ref', [Buffer.from('subject layer')], 'v1');
    const sbom = await pushImageWith(base, 'gc/ref', [Buffer.from('sbom')], undefined, subject.desc);
    const sigOfSbom = await pushImageWith(base, 'gc/ref', [Buffer.from('sig of sbom')], undefined, sbom.desc);   // transitively
    const child = await pushImageWith(base, 'gc/ref', [Buffer.from('child layer')]);
    await pushManifest(base, 'gc/ref', 'multi', makeIndex([child.desc]), MT.ociIndex);
    const childSig = await pushImageWith(base, 'gc/ref', [Buffer.from('child sig')], undefined, child.desc);
    const orphan = await pushImageWith(base, 'gc/ref', [Buffer.from('orphan layer')]);
    const orphanSig = await pushImageWith(base, 'gc/ref', [Buffer.from('orphan sig')], undefined, orphan.desc);
    return { subject, sbom, sigOfSbom, child, childSig, orphan, orphanSig };
  });
  const r = await gc(root, { deleteUntagged: true });
  assert.deepEqual(r.deletedManifests.map((m) => m.digest).sort(), [s.orphan.digest, s.orphanSig.digest].sort());
  assert.ok(!r.deletedBlobs.includes(sha256('sbom')) && r.deletedBlobs.includes(sha256('orphan sig')));
  await withRegistry(root, async (base) => {
    for (const d of [s.sbom.digest, s.sigOfSbom.digest, s.childSig.digest]) await pullComplete(base, 'gc/ref', d);
    const refs = await request(`${base}/v2/gc/ref/referrers/${s.subject.digest}`);
    assert.equal(refs.status, 200);
    assert.deepEqual(refs.json().manifests.map((m: Descriptor) => m.digest), [s.sbom.digest]);
    const gone = await request(`${base}/v2/gc/ref/referrers/${s.orphan.digest}`);
    assert.equal(gone.status, 200);
    assert.deepEqual(gone.json().manifests, []);
  });
});

test('--dry-run deletes nothing but reports what a real run deletes', async (t) => {
  const root = await storageRoot(t);
  await withRegistry(root, async (base) => {
    await pushImage(base, 'gc/dry', 'v1');
    await pushImage(base, 'gc/dry');
    await pushBlob(base, 'gc/dry', Buffer.from('loose'));
  });
  const before = await tree(root);
  const dry = await gc(root, { dryRun: true, deleteUntagged: true });
  assert.equal(dry.dryRun, true);
  assert.equal(dry.deletedManifests.length, 1);
  assert.equal(dry.deletedBlobs.length, 4);   // untagged manifest, its config and layer, the loose blob
  assert.deepEqual(await tree(root), before);
  const real = await gc(root, { deleteUntagged: true });
  assert.deepEqual(real.deletedManifests, dry.deletedManifests);
  assert.deepEqual(real.deletedBlobs, dry.deletedBlobs);
  await withRegistry(root, (base) => pullComplete(base, 'gc/dry', 'v1'));
});

function io() {
  const err = new PassThrough(); let stderr = ''; let stdout = '';
  err.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  return { io: { stdout: { write: (s: string) => { stdout += s; } }, stderr: err, env: {}, exists: () => false }, out: () => stdout, err: () => stderr };
}

async function configFile(dir: string, root: string): Promise<string> {
  const file = join(dir, 'gateway.yml');
  await writeFile(file, `listen: 127.0.0.1:0\nregistry:\n  storage:\n    filesystem: { rootdirectory: ${JSON.stringify(root)} }\n`);
  return file;
}

test('berth gc refuses while a writable registry holds the lease; runs once it is closed or read-only', async (t) => {
  const root = await storageRoot(t);
  const file = await configFile(root, join(root, 'data'));
  const reg = await startRegistry({ root: join(root, 'data') });
  let closed = false;
  t.after(async () => { if (!closed) await reg.close(); });
  await pushBlob(reg.url, 'gc/lease', Buffer.from('loose'));

  const refused = io();
  assert.equal(await runGcCommand(['--config', file], refused.io), 1);
  assert.match(refused.err(), /refusing to run: a registry is writing to this storage: \S+-\d+/);
  assert.equal(refused.out(), '');
  const dry = io();
  assert.equal(await runGcCommand(['--config', file, '--dry-run'], dry.io), 0, dry.err());
  assert.match(dry.out(), /^would delete blob sha256:/m);
  assert.equal(await status(reg.url, 'HEAD', `/v2/gc/lease/blobs/${sha256('loose')}`), 200);

  await reg.close();
  closed = true;
  assert.deepEqual(await liveWriters(driverFor(join(root, 'data'))), [], 'close() removed the lease');
  const ro = await startRegistry({ root: join(root, 'data'), readonly: true });
  try {
    const ok = io();
    assert.equal(await runGcCommand(['--config', file], ok.io), 0, ok.err());
    assert.match(ok.out(), /^deleted blob sha256:/m);
    assert.match(ok.out(), /0 repositories, 0 manifests, 0 blobs marked; deleted 0 manifests, 1 blobs, 0 upload sessions\n$/);
    assert.equal(await status(ro.url, 'HEAD', `/v2/gc/lease/blobs/${sha256('loose')}`), 404);
    assert.ok(!existsSync(join(root, 'data', pathFor({ kind: 'layerLink', name: 'gc/lease', digest: parseDigest(sha256('loose')) }))),
      'the _layers link of a repository without manifests is removed too');
  } finally {
    await ro.close();
  }
});

test('writer lease: heartbeat refresh, stale leases ignored, --force overrides', async (t) => {
  const root = await storageRoot(t);
  const driver = driverFor(root);
  let ticks = 0;
  let refreshed!: () => void;
  const threeWrites = new Promise<void>((r) => { refreshed = r; });
  const now = () => { if (++ticks === 3) refreshed(); return new Date(); };
  const lease = await acquireWriterLease(driver, { log: silentLogger(), refreshMs: 5, now });
  t.after(() => lease.release());
  const live = await liveWriters(driver);
  assert.deepEqual(live.map((w) => w.holder), [lease.holder]);
  assert.deepEqual(await liveWriters(driver, { now: new Date(Date.now() + 31_000) }), [], 'stale after 30 s');
  // The heartbeat keeps writing (the deadline's timer also keeps the loop alive: the lease's is unref'd).
  await withDeadline(threeWrites, 10_000, 'three heartbeat writes of the lease');
  assert.ok((await liveWriters(driver, { now: new Date(Date.now() + 20_000) })).length === 1);

  const file = await configFile(root, root);
  const forced = io();
  assert.equal(await runGcCommand(['--config', file, '--force'], forced.io), 0, forced.err());
  assert.match(forced.err(), /warning: a registry is writing to this storage: .* \(--force\)/);
  await lease.release();
  await lease.release();   // idempotent
  assert.deepEqual(await liveWriters(driver), []);
});

test('berth gc: exit codes and the default ./gateway.yml', async (t) => {
  const dir = await storageRoot(t);
  const usage = io();
  assert.equal(await runGcCommand(['--bogus'], usage.io), 2);
  assert.match(usage.err(), /usage: berth gc/);
  const help = io();
  assert.equal(await runGcCommand(['--help'], help.io), 0);
  assert.match(help.out(), /--delete-untagged/);
  const missing = io();
  assert.equal(await runGcCommand([], { ...missing.io, cwd: dir }), 1);
  assert.match(missing.err(), /invalid configuration[\s\S]*file not found/);
  await configFile(dir, join(dir, 'data'));
  const empty = io();
  assert.equal(await runGcCommand(['--dry-run'], { ...empty.io, cwd: dir }), 0, empty.err());
  assert.equal(empty.out(), 'gc (dry run): 0 repositories, 0 manifests, 0 blobs marked; would delete 0 manifests, 0 blobs, 0 upload sessions\n');
  const badIdle = io();
  assert.equal(await runGcCommand(['--dry-run', '--upload-idle', '10'], { ...badIdle.io, cwd: dir }), 2);
  assert.match(badIdle.err(), /--upload-idle: expected a duration/);

  // main.ts dispatches `gc` (through tsx, so no build is needed).
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), 'gc', '--dry-run', '--config', join(dir, 'gateway.yml')],
    { cwd: REPO_ROOT, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = ''; let err = '';
  child.stdout.setEncoding('utf8').on('data', (c) => { out += c; });
  child.stderr.setEncoding('utf8').on('data', (c) => { err += c; });
  const [code] = await withDeadline(once(child, 'close') as Promise<[number | null]>, 60_000, '`main.ts gc --dry-run` to exit', () => `${out}\n${err}`)
    .catch((e) => { child.kill('SIGKILL'); throw e; });
  assert.equal(code, 0, err);
  assert.match(out, /^gc \(dry run\): 0 repositories/);
});

test('berth gc removes upload sessions nobody wrote to for --upload-idle (dry run lists them); live ones stay', async (t) => {
  const root = await storageRoot(t);
  const data = join(root, 'data');
  const file = await configFile(root, data);
  const { dead, live } = await withRegistry(data, async (base) => {
    const start = async () => (await request(`${base}/v2/gc/uploads/blobs/uploads/`, { method: 'POST' })).headers['docker-upload-uuid']!;
    const ids = { dead: await start(), live: await start() };
    const patch = await request(`${base}/v2/gc/uploads/blobs/uploads/${ids.dead}`, { method: 'PATCH', body: 'partial' });
    assert.equal(patch.status, 202);
    return ids;
  });
  // The dead session was last written two hours ago (its files and directories), the live one just now.
  const deadDir = join(data, pathFor({ kind: 'upload', name: 'gc/uploads', id: dead }));
  const old = new Date(Date.now() - 2 * 3600_000);
  for (const f of [...(await readdir(deadDir)).map((n) => join(deadDir, n)), deadDir]) await utimes(f, old, old);

  const dry = io();
  assert.equal(await runGcCommand(['--config', file, '--dry-run'], dry.io), 0, dry.err());
  assert.match(dry.out(), new RegExp(`^would delete upload gc/uploads ${dead}$`, 'm'));
  assert.match(dry.out(), /would delete 0 manifests, 0 blobs, 1 upload sessions\n$/);
  assert.ok(existsSync(deadDir), 'a dry run deletes nothing');

  const run = io();
  assert.equal(await runGcCommand(['--config', file, '--upload-idle', '3h'], run.io), 0, run.err());
  assert.match(run.out(), /deleted 0 manifests, 0 blobs, 0 upload sessions\n$/, 'idle 2 h < 3 h: kept');
  const run2 = io();
  assert.equal(await runGcCommand(['--config', file], run2.io), 0, run2.err());
  assert.match(run2.out(), new RegExp(`^deleted upload gc/uploads ${dead}$`, 'm'));
  assert.ok(!existsSync(deadDir));
  assert.ok(existsSync(join(data, pathFor({ kind: 'upload', name: 'gc/uploads', id: live }))), 'the live session stays');
});
