// `berth gc` on S3 with several replicas (#17 point 7), real processes on the real Ceph RGW: each writable
// replica keeps its writer lease in the bucket (`_berth/writer/<host>-<pid>`), and gc, a separate process with
// the same s3 config, refuses while one is fresh (exit 1, the filesystem's message naming every holder); a replica
// stopped with SIGTERM removes its lease; a SIGKILLed one's lease stays until its heartbeat is LEASE_STALE_MS old
// (here its heartbeat is rewritten 31 s into the past instead of waiting, as gc.test.ts passes `now`). Then gc
// deletes the unreferenced blob, with --delete-untagged the untagged manifest and its blobs, with --upload-idle a
// dead chunked upload (its open multipart upload and `~tail` too); --dry-run deletes nothing; a fresh replica
// afterwards serves the tagged image completely.
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LEASE_STALE_MS } from '../../src/registry/core/writer-lease.js';
import { pathFor } from '../../src/registry/storage/paths.js';
import { request } from '../support/http.js';
import { MT, locationPath, pushBlob, pushImage, randomBlob, sha256, startUpload } from '../support/oci-client.js';
import { runCli, type ServerProcess } from '../support/processes.js';
import { s3Skip } from '../support/s3.js';
import { openMultipartUploads, rawKeys, replicaSet } from '../support/s3-replicas.js';
import { waitUntil } from '../support/wait.js';

const MiB = 1024 * 1024;
const skip = await s3Skip();
const ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');
const holderOf = (p: ServerProcess) => `${hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'host'}-${p.pid}`;

describe('s3: berth gc across replicas', { skip }, () => {
  test('refuses under a live replica\'s lease, runs after SIGTERM and after a SIGKILLed lease went stale; --dry-run deletes nothing', async () => {
    const set = await replicaSet('gc');
    const d = set.driver;
    const dir = await mkdtemp(join(tmpdir(), 'berth-s3-gc-'));
    const file = join(dir, 'gateway.yml');
    const gc = (...args: string[]) => runCli(['gc', '--config', file, ...args], {}, 60_000);
    try {
      await writeFile(file, set.yaml);
      const [a, b] = await set.start(2);
      const name = 'gc/app';
      const kept = await pushImage(a.url, name, 'keep');
      const untagged = await pushImage(b.url, name);   // by digest: no tag names it
      const loose = Buffer.from('a blob no manifest references');
      await pushBlob(a.url, name, loose);
      // A chunked upload left open: one 10 MiB part in a multipart upload, then 2 MiB (under the 5 MiB a part needs)
      // in the tail. (One 12 MiB PATCH that declares its length is stored as two parts, 7 + 5 MiB, with no tail.)
      let loc = await startUpload(b.url, name);
      const uploadId = loc.split('?')[0]!.split('/').pop()!;
      const body = randomBlob(12 * MiB);
      for (const [from, to] of [[0, 10 * MiB], [10 * MiB, 12 * MiB]] as const) {
        const patched = await request(`${b.url}${loc}`, {
          method: 'PATCH', body: body.subarray(from, to),
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${to - 1}`, 'content-length': String(to - from) },
        });
        assert.equal(patched.status, 202, patched.text());
        loc = locationPath(b.url, patched);
      }
      const patchedAt = Date.now();
      const uploadData = pathFor({ kind: 'uploadData', name, id: uploadId });
      assert.ok((await rawKeys(d)).includes(`${uploadData}~tail`));

      const leases = (await rawKeys(d)).filter((k) => k.includes('/_berth/writer/')).sort();
      assert.deepEqual(leases, [a, b].map((p) => pathFor({ kind: 'writerLease', holder: holderOf(p) })).sort(), 'one lease per replica, in the bucket');

      const refused = await gc();
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /^berth gc: refusing to run: a registry is writing to this storage: /);
      for (const p of [a, b]) assert.ok(refused.stderr.includes(`${holderOf(p)} (heartbeat `), `names ${holderOf(p)}: ${refused.stderr}`);
      assert.equal(refused.stdout, '');

      const before = (await rawKeys(d)).filter((k) => !k.includes('/_berth/')).sort();
      const dry = await gc('--dry-run', '--delete-untagged', '--upload-idle', '1h');
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stderr, /warning: a registry is writing to this storage: .* \(dry run\)/);
      assert.ok(dry.stdout.includes(`would delete manifest ${name}@${untagged.digest}\n`), dry.stdout);
      for (const blob of [sha256(loose), untagged.digest, untagged.config.digest, untagged.layer.digest]) {
        assert.ok(dry.stdout.includes(`would delete blob ${blob}\n`), `${blob}: ${dry.stdout}`);
      }
      assert.match(dry.stdout, /gc \(dry run\): 1 repositories, 2 manifests, \d+ blobs marked; would delete 1 manifests, 4 blobs, 0 upload sessions\n$/);
      assert.deepEqual((await rawKeys(d)).filter((k) => !k.includes('/_berth/')).sort(), before, 'a dry run deletes nothing');

      // SIGTERM releases A's lease; B is SIGKILLed: its lease stays and is fresh, so gc still refuses, naming B only.
      await a.stop();
      await b.kill();
      const bLease = pathFor({ kind: 'writerLease', holder: holderOf(b) });
      assert.deepEqual((await rawKeys(d)).filter((k) => k.includes('/_berth/writer/')), [bLease]);
      const stillRefused = await gc();
      assert.equal(stillRefused.code, 1, stillRefused.stderr);
      assert.ok(stillRefused.stderr.includes(`: ${holderOf(b)} (heartbeat `) && !stillRefused.stderr.includes(holderOf(a)), stillRefused.stderr);
      // Its heartbeat as if B had died LEASE_STALE_MS + 1 s ago (the lease file is what gc reads: the same JSON).
      const lease = JSON.parse((await d.getContent(bLease)).toString('utf8')) as Record<string, unknown>;
      lease.heartbeat = new Date(Date.now() - LEASE_STALE_MS - 1000).toISOString();
      await d.putContent(bLease, Buffer.from(JSON.stringify(lease)));

      const plain = await gc();
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(plain.stderr, '');
      assert.equal(plain.stdout, `deleted blob ${sha256(loose)}\n`
        + 'gc: 1 repositories, 2 manifests, 6 blobs marked; deleted 0 manifests, 1 blobs, 0 upload sessions\n');
      assert.ok((await rawKeys(d)).includes(`${uploadData}~tail`), 'a recent upload is kept (default --upload-idle 1h)');

      await waitUntil('the upload to be 2 s old (S3 times have 1 s resolution)', () => Date.now() - patchedAt > 2000, { timeoutMs: 5000, intervalMs: 50 });
      const untaggedRun = await gc('--delete-untagged', '--upload-idle', '1s');
      assert.equal(untaggedRun.code, 0, untaggedRun.stderr);
      const lines = untaggedRun.stdout.trimEnd().split('\n');
      assert.deepEqual(lines.slice(0, -1).sort(), [
        `deleted manifest ${name}@${untagged.digest}`,
        ...[untagged.digest, untagged.config.digest, untagged.layer.digest].map((x) => `deleted blob ${x}`),
        `deleted upload ${name} ${uploadId}`,
      ].sort());
      assert.equal(lines.at(-1), 'gc: 1 repositories, 2 manifests, 3 blobs marked; deleted 1 manifests, 3 blobs, 1 upload sessions');
      const keys = await rawKeys(d);
      assert.deepEqual(keys.filter((k) => k.includes('/_uploads/')), [], 'the session, its data and its tail are gone');
      assert.deepEqual(await openMultipartUploads(d), [], 'its multipart upload was aborted');
      const again = await gc('--delete-untagged');
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'gc: 1 repositories, 1 manifests, 3 blobs marked; deleted 0 manifests, 0 blobs, 0 upload sessions\n');

      const [c] = await set.start(1);
      const m = await request(`${c.url}/v2/${name}/manifests/keep`, { headers: { accept: ACCEPT } });
      assert.equal(m.status, 200);
      assert.ok(m.body.equals(kept.bytes));
      for (const [digest, bytes] of [[kept.config.digest, kept.configBytes], [kept.layer.digest, kept.layerBytes]] as const) {
        const got = await request(`${c.url}/v2/${name}/blobs/${digest}`);
        assert.equal(got.status, 200, `kept blob ${digest}`);
        assert.ok(got.body.equals(bytes));
      }
      for (const digest of [sha256(loose), untagged.config.digest, untagged.layer.digest]) {
        assert.equal((await request(`${c.url}/v2/${name}/blobs/${digest}`, { method: 'HEAD' })).status, 404, `swept blob ${digest}`);
      }
      assert.equal((await request(`${c.url}/v2/${name}/manifests/${untagged.digest}`, { method: 'HEAD', headers: { accept: ACCEPT } })).status, 404);
      assert.equal((await request(`${c.url}/v2/${name}/blobs/uploads/${uploadId}`)).status, 404, 'the swept upload is unknown');
    } finally {
      await rm(dir, { recursive: true, force: true });
      await set.close();
    }
  });
});
