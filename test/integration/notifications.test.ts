// Webhook notifications end to end: a real registry on port 0 pushes Distribution-format envelopes
// to real receiving http servers on 127.0.0.1:0 (envelope, order, signature, retry/backoff,
// durability across an app restart on the same root, filters, disabled endpoints, inmemory queue), and one
// endpoint's delivery loop over a real file journal: unreadable entries are skipped and counted, a batch
// the journal's bound cut into while the endpoint was down is read again.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { NotificationEndpointConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import { FileJournal } from '../../src/registry/notify/journal.js';
import { stats } from '../../src/registry/notify/listener.js';
import { EndpointQueue } from '../../src/registry/notify/queue.js';
import { pushBlob, pushImage, randomBlob } from '../support/oci-client.js';
import { request } from '../support/http.js';
import { startRegistry } from '../support/registry-server.js';
import { waitUntil } from '../support/wait.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

interface Received { status: number; headers: IncomingHttpHeaders; body: Buffer; events: any[] }

/** A webhook receiver; `failNext` answers 500 to that many requests, `failing` to all while set. */
async function startReceiver(t: { after(fn: () => unknown): void }) {
  const got: Received[] = [];
  const ctl = { failNext: 0, failing: false };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const fail = ctl.failing || ctl.failNext > 0;
      if (ctl.failNext > 0) ctl.failNext--;
      const status = fail ? 500 : 200;
      got.push({ status, headers: req.headers, body, events: JSON.parse(body.toString('utf8')).events });
      res.writeHead(status, { 'content-length': '0' }).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const delivered = () => got.filter((r) => r.status === 200).flatMap((r) => r.events);
  /** Waits (a short poll, bounded) until `n` events were accepted. */
  async function waitDelivered(n: number, ms = 10_000): Promise<any[]> {
    await waitUntil(`${n} events delivered`, () => delivered().length >= n, { timeoutMs: ms, detail: () => `${delivered().length}/${n} delivered` });
    return delivered();
  }
  return { url, got, ctl, delivered, waitDelivered };
}

function endpoint(name: string, url: string, o: Partial<NotificationEndpointConfig> = {}): NotificationEndpointConfig {
  return {
    name, url, headers: {}, timeout: 2000, threshold: 2, backoff: 20, disabled: false,
    ignoredmediatypes: [], ignore: { mediatypes: [], actions: [] }, ...o,
  };
}

const EVENTS_TYPE = 'application/vnd.docker.distribution.events.v2+json';

test('envelope, order, signature, headers, filters and a disabled endpoint', async (t) => {
  const a = await startReceiver(t);
  const b = await startReceiver(t);
  const c = await startReceiver(t);
  const reg = await startRegistry({
    notifications: {
      events: { includereferences: true },
      endpoints: [
        endpoint('a', a.url, { signingkey: 's3cret', headers: { Authorization: ['Bearer tok'], 'X-Multi': ['1', '2'] } }),
        endpoint('b', b.url, { ignoredmediatypes: ['application/octet-stream'], ignore: { mediatypes: [], actions: ['pull'] } }),
        endpoint('c', c.url, { disabled: true }),
      ],
    },
  });
  t.after(() => reg.close());
  const img = await pushImage(reg.url, 'team/app', 'v1');
  const ua = { 'user-agent': 'notify-test/1.0' };
  assert.equal((await request(`${reg.url}/v2/team/app/manifests/v1`, { method: 'HEAD' })).status, 200);   // HEAD: no event
  assert.equal((await request(`${reg.url}/v2/team/app/manifests/v1`, { headers: ua })).status, 200);
  assert.equal((await request(`${reg.url}/v2/team/app/blobs/${img.layer.digest}`)).status, 200);
  const mount = await request(`${reg.url}/v2/other/blobs/uploads/?mount=${img.layer.digest}&from=team/app`, { method: 'POST', headers: { 'content-length': '0' } });
  assert.equal(mount.status, 201);
  assert.equal((await request(`${reg.url}/v2/team/app/manifests/v1`, { method: 'DELETE' })).status, 202);
  assert.equal((await request(`${reg.url}/v2/team/app/manifests/${img.digest}`, { method: 'DELETE' })).status, 202);
  assert.equal((await request(`${reg.url}/v2/team/app/blobs/${img.config.digest}`, { method: 'DELETE' })).status, 202);

  const evs = await a.waitDelivered(9);
  assert.deepEqual(evs.map((e) => `${e.action} ${e.target.repository} ${e.target.digest ?? e.target.tag}`), [
    `push team/app ${img.config.digest}`, `push team/app ${img.layer.digest}`, `push team/app ${img.digest}`,
    `pull team/app ${img.digest}`, `pull team/app ${img.layer.digest}`, `mount other ${img.layer.digest}`,
    'delete team/app v1', `delete team/app ${img.digest}`, `delete team/app ${img.config.digest}`,
  ]);
  const push = evs[2];
  assert.equal(push.target.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(push.target.size, img.bytes.length);
  assert.equal(push.target.length, img.bytes.length);
  assert.equal(push.target.tag, 'v1');
  assert.equal(push.target.url, `${reg.url}/v2/team/app/manifests/${img.digest}`);
  assert.deepEqual(push.target.references.map((r: any) => r.digest), [img.config.digest, img.layer.digest]);
  assert.equal(push.request.method, 'PUT');
  assert.equal(push.request.host, new URL(reg.url).host);
  assert.match(push.request.addr, /^127\.0\.0\.1:\d+$/);
  assert.ok(push.id && !Number.isNaN(Date.parse(push.timestamp)));
  assert.ok(push.source.instanceID && push.source.addr);
  assert.deepEqual(push.actor, {});
  assert.equal(evs[3].request.useragent, 'notify-test/1.0');
  assert.equal(evs[3].target.tag, 'v1');
  assert.equal(evs[5].target.fromRepository, 'team/app');
  assert.equal(new Set(evs.map((e) => e.id)).size, 9);
  for (const r of a.got) {
    assert.equal(r.headers['content-type'], EVENTS_TYPE);
    assert.equal(r.headers.authorization, 'Bearer tok');
    assert.equal(r.headers['x-multi'], '1, 2');
    const want = 'sha256=' + createHmac('sha256', 's3cret').update(r.body).digest('hex');
    assert.equal(r.headers['x-berth-signature'], want);
  }

  // b: no pulls, no octet-stream (blob push/mount) events → manifest push and the deletes (a blob
  // delete carries no media type, as in Distribution, so a media-type filter cannot drop it)
  const evb = await b.waitDelivered(4);
  await waitStats((s) => s.name === 'b' && s.pending === 0);
  assert.deepEqual(b.delivered().map((e) => `${e.action} ${e.target.digest ?? e.target.tag}`),
    [`push ${img.digest}`, 'delete v1', `delete ${img.digest}`, `delete ${img.config.digest}`]);
  assert.equal(evb.length, 4);
  assert.equal(b.got[0].headers['x-berth-signature'], undefined);
  assert.equal(c.got.length, 0);
  const sc = stats().find((s) => s.url === c.url);
  assert.equal(sc?.disabled, true);
});

/** Bounded, event-free wait on stats(): polls every 10 ms for at most 10 s. */
async function waitStats(pred: (s: ReturnType<typeof stats>[number]) => boolean): Promise<void> {
  await waitUntil('stats() to match', () => stats().some(pred), { detail: () => JSON.stringify(stats()) });
}

test('a failing receiver gets every event, in order, once it recovers', async (t) => {
  const a = await startReceiver(t);
  a.ctl.failNext = 5;
  const reg = await startRegistry({ notifications: { events: { includereferences: false }, endpoints: [endpoint('flaky', a.url)] } });
  t.after(() => reg.close());
  const digests: string[] = [];
  for (let i = 0; i < 6; i++) digests.push(await pushBlob(reg.url, 'flaky/repo', randomBlob(64 + i)));
  const evs = await a.waitDelivered(6);
  assert.deepEqual(evs.map((e) => e.target.digest), digests);
  assert.ok(a.got.filter((r) => r.status === 500).length === 5);
  await waitStats((s) => s.name === 'flaky' && s.pending === 0);
  const s = stats().find((x) => x.url === a.url)!;
  assert.equal(s.failures, 5);
  assert.equal(s.consecutiveFailures, 0);
  assert.equal(s.delivered, 6);
});

test('events journaled before the response are delivered by the next app on the same root', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-notify-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const a = await startReceiver(t);
  a.ctl.failing = true;
  const notifications = { events: { includereferences: false }, endpoints: [endpoint('durable', a.url, { backoff: 5 })] };
  const first = await startRegistry({ root, notifications });
  const d1 = await pushBlob(first.url, 'dur/repo', randomBlob(100));
  const d2 = await pushBlob(first.url, 'dur/repo', randomBlob(101));
  // on disk before the PUT answered
  const journal = await readFile(join(root, '.notifications', 'events.jsonl'), 'utf8');
  assert.deepEqual(journal.trim().split('\n').map((l) => JSON.parse(l).target.digest), [d1, d2]);
  await waitStats((s) => s.name === 'durable' && s.failures >= 1);
  await first.close();
  assert.equal(a.delivered().length, 0);

  a.ctl.failing = false;
  const second = await startRegistry({ root, notifications });
  t.after(() => second.close());
  const d3 = await pushBlob(second.url, 'dur/repo', randomBlob(102));
  const evs = await a.waitDelivered(3);
  assert.deepEqual(evs.map((e) => e.target.digest), [d1, d2, d3]);
  await waitStats((s) => s.name === 'durable' && s.pending === 0);
  await second.close();

  // a third start has nothing left to send, and starts from an empty journal
  const third = await startRegistry({ root, notifications });
  t.after(() => third.close());
  assert.equal(stats().find((s) => s.name === 'durable')?.pending, 0);
  assert.equal(await readFile(join(root, '.notifications', 'events.jsonl'), 'utf8'), '');
  const d4 = await pushBlob(third.url, 'dur/repo', randomBlob(103));
  assert.deepEqual((await a.waitDelivered(4)).map((e) => e.target.digest), [d1, d2, d3, d4]);
  await third.close();
});

test('inmemory storage uses a memory queue', async (t) => {
  const a = await startReceiver(t);
  const reg = await startRegistry({ driver: 'inmemory', notifications: { events: { includereferences: false }, endpoints: [endpoint('mem', a.url)] } });
  t.after(() => reg.close());
  const d = await pushBlob(reg.url, 'mem/repo', randomBlob(10));
  const empty = await pushBlob(reg.url, 'mem/repo', '');
  assert.equal((await request(`${reg.url}/v2/mem/repo/blobs/${empty}`, { method: 'HEAD' })).status, 200);   // HEAD: no event
  assert.equal((await request(`${reg.url}/v2/mem/repo/blobs/${empty}`)).status, 200);
  const evs = await a.waitDelivered(3);
  assert.deepEqual(evs.map((e) => `${e.action} ${e.target.digest} ${e.target.size}`), [`push ${d} 10`, `push ${empty} 0`, `pull ${empty} 0`]);
});

const event = (n: number) => Buffer.from(JSON.stringify({ id: `e${n}`, action: 'push', target: { repository: 'r', digest: `d${n}` }, pad: 'x'.repeat(40) }));

async function queueSetup(t: { after(fn: () => unknown): void }, maxBytes?: number) {
  const dir = await mkdtemp(join(tmpdir(), 'berth-queue-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const hook = await startWebhookReceiver();
  t.after(() => hook.close());
  let q: EndpointQueue | undefined;
  const journal = await FileJournal.open(dir, { maxBytes, readers: ['hook'], onDrop: (lost) => q?.dropped(lost.get('hook') ?? 0) });
  q = new EndpointQueue({
    // A generous POST timeout: a loaded machine must not turn a slow 2xx into a retry (a duplicate delivery).
    name: 'hook', url: hook.url, headers: {}, timeout: 10_000, threshold: 1, backoff: 20,
    ignoredMediaTypes: new Set(), ignoredActions: new Set(), batch: 4,
  }, journal, silentLogger());
  t.after(async () => { await q!.close(); await journal.close(); });
  return { journal, hook, q };
}

test('an unreadable entry is skipped and counted; the events around it are delivered in order', async (t) => {
  const { journal, hook, q } = await queueSetup(t);
  await journal.append([event(1), Buffer.from('{not json'), event(2)]);
  q.start();
  q.notify();
  const got = await hook.waitDelivered(2);
  assert.deepEqual(got.map((e) => e.id), ['e1', 'e2']);
  await waitUntil('the offset to reach the end', () => q.stats().pending === 0);
  assert.equal(q.stats().dropped, 1);
});

test('a batch cut by the journal\'s bound while the endpoint was down is read again: delivered + dropped = appended', async (t) => {
  const { journal, hook, q } = await queueSetup(t, 600);
  await hook.stop();
  q.start();
  for (let i = 0; i < 40; i++) { await journal.append([event(i)]); q.notify(); }
  await waitUntil('drops', () => q.stats().dropped > 0 && q.stats().failures > 0);
  await hook.start();
  await waitUntil('the endpoint to catch up', () => q.stats().pending === 0);
  // Delivery is at least once: a batch the endpoint took but whose answer was lost comes again; count ids once.
  const got = [...new Set(hook.delivered().map((e) => Number(e.id.slice(1))))];
  assert.equal(got.length + q.stats().dropped, 40, `delivered ${got.length}, dropped ${q.stats().dropped}`);
  assert.deepEqual(got, [...got].sort((a, b) => a - b));
  assert.equal(got.at(-1), 39);
});
