// purgeUploads and startUploadPurger on real storage (inmemory and a filesystem temp dir): old uploads
// go, new ones stay, dry runs delete nothing, a missing or bad startedat falls back to the modTime.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { parseRfc3339, purgeUploads, startUploadPurger } from '../../src/registry/core/upload-purger.js';
import { silentLogger } from '../../src/log/logger.js';
import { wrapDriver } from '../../src/registry/storage/base.js';
import type { StorageDriver } from '../../src/registry/storage/driver.js';
import { FilesystemDriver } from '../../src/registry/storage/drivers/filesystem.js';
import { InMemoryDriver } from '../../src/registry/storage/drivers/inmemory.js';
import { pathFor } from '../../src/registry/storage/paths.js';
import { makeTempDir } from '../support/tmp.js';

const log = silentLogger();
const DAY = 24 * 3600_000;
const digest = { algorithm: 'sha256', hex: 'b'.repeat(64) };

const drivers: Record<string, (t: TestContext) => Promise<StorageDriver>> = {
  inmemory: async () => wrapDriver(new InMemoryDriver()),
  filesystem: async (t) => {
    const tmp = await makeTempDir('berth-purger');
    t.after(() => tmp.cleanup());
    return wrapDriver(new FilesystemDriver({ rootdirectory: tmp.path }));
  },
};

async function addUpload(d: StorageDriver, name: string, id: string, startedat?: string): Promise<string> {
  await d.putContent(pathFor({ kind: 'uploadData', name, id }), Buffer.from('partial bytes'));
  if (startedat !== undefined) await d.putContent(pathFor({ kind: 'uploadStartedAt', name, id }), Buffer.from(startedat));
  return pathFor({ kind: 'upload', name, id });
}

const exists = (d: StorageDriver, p: string) => d.stat(p).then(() => true, () => false);

async function seed(d: StorageDriver) {
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
  const up = {
    old: await addUpload(d, 'a/b', 'old', iso(now - 10 * DAY)),
    oldNano: await addUpload(d, 'library', 'old-nano', '2020-05-06T07:08:09.123456789Z'),
    fresh: await addUpload(d, 'a/b', 'fresh', iso(now - 3600_000)),
    nested: await addUpload(d, 'library/ubuntu', 'old-nested', iso(now - 8 * DAY)),
    noStart: await addUpload(d, 'c', 'no-startedat'),
    garbage: await addUpload(d, 'c', 'garbage', 'not a time'),
  };
  const manifest = pathFor({ kind: 'manifestRevisionLink', name: 'a/b', digest });
  const blob = pathFor({ kind: 'blobData', digest });
  await d.putContent(manifest, Buffer.from('link'));
  await d.putContent(blob, Buffer.from('blob'));
  return { up, kept: [manifest, blob], olderThan: new Date(now - 7 * DAY) };
}

for (const [name, make] of Object.entries(drivers)) {
  describe(`upload purger (${name})`, () => {
    it('deletes uploads started before the cut-off and keeps the rest', async (t) => {
      const d = await make(t);
      const { up, kept, olderThan } = await seed(d);
      const { deleted } = await purgeUploads(d, { olderThan, dryRun: false, log });
      assert.deepEqual(deleted.sort(), [up.old, up.oldNano, up.nested].sort());
      for (const p of [up.old, up.oldNano, up.nested]) assert.equal(await exists(d, p), false, p);
      for (const p of [up.fresh, up.noStart, up.garbage, ...kept]) assert.equal(await exists(d, p), true, p);
      assert.deepEqual(await d.list(pathFor({ kind: 'uploadsRoot', name: 'a/b' })), [up.fresh]);
    });

    it('dry run reports but deletes nothing', async (t) => {
      const d = await make(t);
      const { up, olderThan } = await seed(d);
      const { deleted } = await purgeUploads(d, { olderThan, dryRun: true, log });
      assert.deepEqual(deleted.sort(), [up.old, up.oldNano, up.nested].sort());
      for (const p of Object.values(up)) assert.equal(await exists(d, p), true, p);
    });

    it('without a readable startedat, the upload directory modTime decides', async (t) => {
      const d = await make(t);
      const { up } = await seed(d);
      const { deleted } = await purgeUploads(d, { olderThan: new Date(Date.now() + 60_000), dryRun: false, log });
      assert.ok(deleted.includes(up.noStart) && deleted.includes(up.garbage));
      assert.equal(deleted.length, 6);
    });

    it('an empty storage purges nothing', async (t) => {
      const d = await make(t);
      assert.deepEqual(await purgeUploads(d, { olderThan: new Date(), dryRun: false, log }), { deleted: [], sessions: [] });
    });

    it("by: 'modified' (berth gc) judges by the newest write, not the start: an old session still written to stays", async (t) => {
      const d = await make(t);
      const { up } = await seed(d);   // every session was written just now, whatever its startedat says
      const cut = new Date(Date.now() - 60_000);
      const r = await purgeUploads(d, { olderThan: cut, by: 'modified', dryRun: false, log });
      assert.deepEqual(r, { deleted: [], sessions: [] });
      assert.equal(await exists(d, up.old), true);
      const later = await purgeUploads(d, { olderThan: new Date(Date.now() + 60_000), by: 'modified', dryRun: true, log });
      assert.equal(later.deleted.length, 6);
      assert.deepEqual(later.sessions.find((s) => s.id === 'old-nested'), { repository: 'library/ubuntu', id: 'old-nested' });
    });

    it('startUploadPurger runs after the jittered delay and stop() ends it', async (t) => {
      const d = await make(t);
      const { up } = await seed(d);
      // The purger's timers are unref'd (they never hold a process open); hold this one open meanwhile.
      const keepAlive = setInterval(() => {}, 60_000);
      t.after(() => clearInterval(keepAlive));
      let stop = () => {};
      const ran = new Promise<{ deleted: string[] } | Error>((resolve) => {
        const p = startUploadPurger(d, { enabled: true, age: 7 * DAY, interval: 3600_000, dryrun: false }, log, {
          random: () => 0, onRun: resolve,
        });
        stop = p.stop;
      });
      t.after(() => stop());
      const r = await ran;
      assert.ok(!(r instanceof Error), String(r));
      assert.equal(r.deleted.length, 3);
      assert.equal(await exists(d, up.old), false);
      stop();
      stop();   // idempotent
    });

    it('startUploadPurger does nothing when disabled', async (t) => {
      const d = await make(t);
      const p = startUploadPurger(d, { enabled: false, age: 0, interval: 1, dryrun: false }, log, {
        random: () => 0, onRun: () => assert.fail('must not run'),
      });
      p.stop();
    });
  });
}

describe('parseRfc3339', () => {
  const rows: [string, string | null][] = [
    ['2024-01-02T03:04:05Z', '2024-01-02T03:04:05.000Z'],
    ['2024-01-02T03:04:05.123456789Z', '2024-01-02T03:04:05.123Z'],
    ['2024-01-02T03:04:05.5+02:00', '2024-01-02T01:04:05.500Z'],
    ['  2024-01-02T03:04:05Z\n', '2024-01-02T03:04:05.000Z'],
    ['2024-01-02', null],
    ['yesterday', null],
    ['2024-13-02T03:04:05Z', null],
    ['', null],
  ];
  for (const [input, want] of rows) {
    it(JSON.stringify(input), () => assert.equal(parseRfc3339(input)?.toISOString() ?? null, want));
  }
});
