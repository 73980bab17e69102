// Issue 14, point 12: the notification journal. With its endpoint down it no longer grows without bound
// (journalmaxsize, journalmaxage: the oldest events are dropped, counted on /metrics and /debug/vars,
// warned), and what it kept is delivered in order once the endpoint is back. On a full disk (the journal file is /dev/full, which
// answers every write with ENOSPC) pulls keep being served, their events are counted as dropped and warned
// once; a push answers 500 with its content stored (as the README says). A real berth (the gateway with its
// debug listener), a real webhook receiver, loopback only, every wait bounded.
import assert from 'node:assert/strict';
import { rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/gateway/server.js';
import { createLogger } from '../../src/log/logger.js';
import { descriptor, makeImageManifest, manifestBytes, MT, randomBlob, sha256 } from '../support/oci-client.js';
import { request } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

type T = { after(fn: () => unknown): void };
const MAX = 16 * 1024;

function capture() {
  const lines: Record<string, any>[] = [];
  const dest = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { log: createLogger({ level: 'info', destination: dest }), lines };
}

async function berth(t: T, root: string, hookUrl: string, maxAge = '168h') {
  const { log, lines } = capture();
  const text = `listen: "127.0.0.1:0"
registry:
  storage:
    filesystem: { rootdirectory: ${JSON.stringify(root)} }
    maintenance: { uploadpurging: { enabled: false } }
  notifications:
    journalmaxsize: ${MAX}
    journalmaxage: ${maxAge}
    endpoints:
      - { name: hook, url: "${hookUrl}", timeout: 10s, threshold: 1, backoff: 50ms }
  http: { debug: { addr: "127.0.0.1:0" } }
`;
  const server = await startServer(loadConfigFromString(text, join(root, '..', 'gateway.yml')), log, { drainMs: 1000 });
  let closed = false;
  const close = async () => { if (!closed) { closed = true; await server.close(); } };
  t.after(close);
  return { server, lines, close };
}

async function vars(server: RunningServer) {
  const r = await request(`${server.debugUrl}/debug/vars`);
  assert.equal(r.status, 200);
  return r.json().notifications.endpoints.find((e: { name: string }) => e.name === 'hook');
}

async function metric(server: RunningServer, name: string): Promise<number | undefined> {
  const text = (await request(`${server.debugUrl}/metrics`)).text();
  const m = new RegExp(`^${name}\\{endpoint="hook"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Pushes a one-layer image under `tag`; returns the manifest digest. */
async function pushImage(base: string, repo: string, tag: string) {
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: randomBlob(4).toString('hex') }));
  const layer = randomBlob(300);
  for (const b of [cfg, layer]) {
    const r = await request(`${base}/v2/${repo}/blobs/uploads/?digest=${sha256(b)}`, { method: 'POST', body: b, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(r.status, 201, r.text());
  }
  return { ...await putManifest(base, repo, tag, cfg, layer), cfg, layerBytes: layer, layer: sha256(layer) };
}

async function putManifest(base: string, repo: string, tag: string, cfg: Buffer, layer: Buffer, annotations?: Record<string, string>) {
  const bytes = manifestBytes(makeImageManifest({ config: descriptor(MT.ociConfig, cfg), layers: [descriptor(MT.ociLayer, layer)], annotations }));
  const put = await request(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: bytes, headers: { 'content-type': MT.ociManifest } });
  return { put, digest: sha256(bytes), bytes };
}

test('endpoint down: the journal stays within journalmaxsize, drops the oldest, counts and warns; the rest is delivered in order', async (t) => {
  const hook = await startWebhookReceiver();
  t.after(() => hook.close());
  await hook.stop();                                          // the endpoint is down: connections refused
  const dir = await makeTempDir('berth-adv-journal-');
  t.after(() => dir.cleanup());
  const root = join(dir.path, 'data');
  const { server, lines } = await berth(t, root, hook.url);

  const img = await pushImage(server.url, 'team/app', 'v1');
  assert.equal(img.put.status, 201);
  const pulls = 120;
  for (let i = 0; i < pulls; i++) {
    const r = await request(`${server.url}/v2/team/app/manifests/v1`, { headers: { accept: MT.ociManifest, 'x-request-id': `pull-${i}` } });
    assert.equal(r.status, 200);
  }
  const total = 3 + pulls;                                    // two blob pushes, one manifest push, the pulls
  const journal = join(root, '.notifications', 'events.jsonl');
  // Pull events are journaled in the background: wait until every one is either kept or counted as dropped.
  let before: any;
  await waitUntil('every event kept or counted as dropped', async () => {
    before = await vars(server);
    return before.dropped + before.pending === total && (await stat(journal)).size <= MAX;   // cut right after the append
  }, { detail: () => JSON.stringify(before) });
  assert.ok(before.dropped > 0, `events were dropped: ${JSON.stringify(before)}`);
  assert.equal(await metric(server, 'berth_notifications_dropped_total'), before.dropped);
  const warned = lines.filter((l) => l.level === 40 && /notification journal full/.test(l.msg));
  assert.ok(warned.length >= 1, 'a warning names the drop');
  assert.equal(warned[0].reason, 'maxsize');

  await hook.start();                                         // back: what was kept arrives, oldest first
  await waitUntil('the endpoint to catch up', async () => (await vars(server)).pending === 0, { timeoutMs: 15_000 });
  const after = await vars(server);
  // Delivery is at least once: a batch the endpoint took whose answer was lost (a loaded machine) comes again.
  const got = [...new Map(hook.delivered().map((e) => [e.id, e])).values()];
  assert.equal(got.length + after.dropped, total, `delivered ${got.length} (${hook.delivered().length} with repeats), dropped ${after.dropped}`);
  const ids = got.map((e) => e.request.id);
  assert.equal(ids[ids.length - 1], `pull-${pulls - 1}`, 'the newest events are kept');
  const n = ids.map((id) => Number(id.slice('pull-'.length)));
  assert.deepEqual(n, [...n].sort((a, b) => a - b), 'in order');
});

test('endpoint down: events older than journalmaxage are dropped even when nothing else happens', async (t) => {
  const hook = await startWebhookReceiver();
  t.after(() => hook.close());
  await hook.stop();
  const dir = await makeTempDir('berth-adv-journal-age-');
  t.after(() => dir.cleanup());
  const { server, lines } = await berth(t, join(dir.path, 'data'), hook.url, '1s');
  assert.equal((await pushImage(server.url, 'team/app', 'v1')).put.status, 201);
  let v: any;
  await waitUntil('the three push events to age out', async () => {
    v = await vars(server);
    return v.dropped === 3 && v.pending === 0;
  }, { detail: () => JSON.stringify(v) });
  assert.equal(await metric(server, 'berth_notifications_dropped_total'), 3);
  assert.ok(lines.some((l) => l.level === 40 && /notification journal full/.test(l.msg) && l.reason === 'maxage'));
  await hook.start();
  const later = await pushImage(server.url, 'team/app', 'v2');   // newer events are delivered
  await hook.waitDelivered(3);
  assert.equal(hook.delivered().at(-1).target.digest, later.digest);
});

test('disk full under the journal: pulls are served, their events counted as dropped with one warning; a push answers 500 with its content stored', async (t) => {
  const hook = await startWebhookReceiver();
  t.after(() => hook.close());
  const dir = await makeTempDir('berth-adv-journal-full-');
  t.after(() => dir.cleanup());
  const root = join(dir.path, 'data');
  const first = await berth(t, root, hook.url);
  const img = await pushImage(first.server.url, 'team/app', 'v1');
  assert.equal(img.put.status, 201);
  await hook.waitDelivered(3);
  await first.close();

  // Every write to the journal now fails with ENOSPC, as on a full disk.
  const journal = join(root, '.notifications', 'events.jsonl');
  await rm(journal);
  await symlink('/dev/full', journal);
  const { server, lines } = await berth(t, root, hook.url);

  const pulls = 30;
  for (let i = 0; i < pulls; i++) {
    const m = await request(`${server.url}/v2/team/app/manifests/v1`, { headers: { accept: MT.ociManifest } });
    assert.equal(m.status, 200, `manifest pull ${i}: ${m.text()}`);
    const b = await request(`${server.url}/v2/team/app/blobs/${img.layer}`);
    assert.equal(b.status, 200, `blob pull ${i}`);
  }
  await waitUntil('the lost pull events to be counted', async () => (await vars(server)).dropped === 2 * pulls,
    { detail: () => 'dropped count below the pulls' });
  assert.equal(await metric(server, 'berth_notifications_dropped_total'), 2 * pulls);
  const warned = lines.filter((l) => l.level === 40 && /cannot take events/.test(l.msg));
  assert.equal(warned.length, 1, 'one warning for the whole run of failures');
  assert.equal(lines.filter((l) => l.level >= 50).length, 0, 'no error lines for pulls');

  // A push cannot have its event journaled: 500, and the content is stored (a retry records the event).
  const blob = randomBlob(100);
  const up = await request(`${server.url}/v2/team/app/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(up.status, 500);
  assert.equal((await request(`${server.url}/v2/team/app/blobs/${sha256(blob)}`, { method: 'HEAD' })).status, 200, 'the blob is stored');
  const push = await putManifest(server.url, 'team/app', 'v2', img.cfg, img.layerBytes, { n: 'two' });
  assert.equal(push.put.status, 500);
  assert.equal(push.put.json().errors[0].code, 'UNKNOWN');
  assert.equal((await request(`${server.url}/v2/team/app/manifests/${push.digest}`, { headers: { accept: MT.ociManifest } })).status, 200);
  assert.equal(hook.delivered().length, 3, 'nothing after the disk filled up was delivered');
});
