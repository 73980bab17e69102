// The repository decorators over the real core (StorageRegistry on the in-memory driver), no HTTP:
// notifications (repository-listener.ts) record every successful call with the request's facts; a push,
// mount or delete resolves only once its event is recorded, a pull does not wait for it; failed calls
// record nothing. The notifier here is the decorator's own seam (Notifier), gated by the test so the
// order "answer before / after the event is durable" can be observed; the journal itself is tested in
// notify-journal.test.ts and end to end with a webhook receiver in the integration tests.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { silentLogger } from '../../src/log/logger.js';
import { digestOf } from '../../src/registry/core/digest.js';
import { BlobUnknownError } from '../../src/registry/core/errors.js';
import { MT } from '../../src/registry/core/manifest-validate.js';
import type { Repository } from '../../src/registry/core/repository.js';
import { StorageRegistry } from '../../src/registry/core/storage-registry.js';
import type { Action, TargetInfo } from '../../src/registry/notify/events.js';
import type { Notifier } from '../../src/registry/notify/listener.js';
import { listen } from '../../src/registry/notify/repository-listener.js';
import { wrapDriver } from '../../src/registry/storage/base.js';
import { InMemoryDriver } from '../../src/registry/storage/drivers/inmemory.js';
import { currentRequest, runWithRequest, type RequestFacts } from '../../src/util/request-context.js';

interface Recorded { action: Action; target: TargetInfo; facts: RequestFacts | undefined; release(): void; done: boolean }

/** A Notifier whose record() resolves only when the test releases it (durability on demand). */
function gatedNotifier() {
  const recorded: Recorded[] = [];
  const notifier: Notifier = {
    record(action, target) {
      return new Promise<void>((resolve) => {
        const r: Recorded = { action, target, facts: currentRequest(), done: false, release: () => { r.done = true; resolve(); } };
        recorded.push(r);
      });
    },
    stats: () => [],
    close: async () => {},
  };
  return { notifier, recorded };
}

/** Resolves to 'settled' if p settles within a few turns of the event loop, else 'pending'. */
async function state(p: Promise<unknown>): Promise<'settled' | 'pending'> {
  let settled = false;
  p.then(() => { settled = true; }, () => { settled = true; });
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return settled ? 'settled' : 'pending';
}

const FACTS: RequestFacts = { reqId: 'r-1', user: 'alice', addr: '203.0.113.7', host: 'reg.example', method: 'PUT', useragent: 'ua/1', scheme: 'https' };

function setup(): { repo: Repository; recorded: Recorded[] } {
  const { notifier, recorded } = gatedNotifier();
  const registry = new StorageRegistry(wrapDriver(new InMemoryDriver()), {
    deleteEnabled: true, readonly: false, decorators: [listen(notifier, silentLogger())],
  });
  return { repo: registry.repository('team/app'), recorded };
}

test('a push resolves only once its event is recorded, with the request facts; a pull answers without waiting', async () => {
  const { repo, recorded } = setup();
  const bytes = Buffer.from('layer bytes');
  const d = digestOf(bytes);

  const push = runWithRequest(FACTS, () => repo.uploads.upload(d, { body: Readable.from([bytes]) }));
  assert.equal(await state(push), 'pending', 'the push waits for its event');
  assert.equal(recorded.length, 1);
  const [ev] = recorded;
  assert.deepEqual([ev!.action, ev!.target], ['push', { repository: 'team/app', kind: 'blob', mediaType: 'application/octet-stream', size: bytes.length, digest: d.text }]);
  assert.deepEqual(ev!.facts, FACTS, 'the event sees who pushed, from where');
  ev!.release();
  assert.equal((await push).size, bytes.length);

  const pull = runWithRequest({ ...FACTS, method: 'GET' }, () => repo.blobs.get(d));
  assert.equal(await state(pull), 'settled', 'the pull does not wait for its event');
  assert.equal(recorded.length, 2);
  assert.equal(recorded[1]!.action, 'pull');
  assert.equal(recorded[1]!.done, false, 'its event was still pending when the pull answered');
  assert.equal(recorded[1]!.facts?.method, 'GET');

  assert.deepEqual(await repo.blobs.stat(d), (await pull).descriptor);
  assert.equal(recorded.length, 2, 'a stat (HEAD) is not a pull');
});

test('manifests: put (with its tag) waits for its event, get does not, stat records nothing; deletes wait', async () => {
  const { repo, recorded } = setup();
  const release = () => { for (const r of recorded) if (!r.done) r.release(); };
  const config = Buffer.from('{}');
  const cd = digestOf(config);
  const up = repo.uploads.upload(cd, { body: Readable.from([config]) });
  await state(up); release(); await up;
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd.text, size: config.length }, layers: [],
  }));
  const put = repo.manifests.put({ bytes: manifest, contentType: MT.ociManifest, tags: ['v1'] });
  assert.equal(await state(put), 'pending');
  const pushed = recorded.at(-1)!;
  assert.deepEqual([pushed.action, pushed.target.kind, pushed.target.tag, pushed.target.size], ['push', 'manifest', 'v1', manifest.length]);
  release();
  const { digest } = await put;

  const n = recorded.length;
  await repo.manifests.stat({ tag: 'v1' });
  assert.equal(recorded.length, n, 'HEAD is not a pull');
  const get = repo.manifests.get({ tag: 'v1' });
  assert.equal(await state(get), 'settled');
  assert.deepEqual([recorded.at(-1)!.action, recorded.at(-1)!.target.tag, recorded.at(-1)!.target.digest], ['pull', 'v1', digest.text]);

  const del = repo.manifests.delete({ digest });
  assert.equal(await state(del), 'pending', 'a delete waits for its event');
  assert.deepEqual([recorded.at(-1)!.action, recorded.at(-1)!.target.kind], ['delete', 'manifest']);
  release();
  await del;
});

test('failed calls record nothing', async () => {
  const { repo, recorded } = setup();
  const d = digestOf(Buffer.from('never pushed'));
  await assert.rejects(repo.blobs.get(d), BlobUnknownError);
  await assert.rejects(repo.blobs.delete(d), BlobUnknownError);
  assert.equal(await repo.blobs.mount('other/repo', d), undefined, 'nothing to mount: a normal upload follows');
  await assert.rejects(repo.uploads.upload(d, { body: Readable.from([Buffer.from('not those bytes')]) }), { name: 'DigestMismatchError' });
  assert.deepEqual(recorded, []);
});
