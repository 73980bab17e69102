// Notifications through the whole gateway, in-process on real sockets: htpasswd auth in front of the
// embedded registry, a real webhook receiver, and the debug listener. Every event of an authenticated
// request carries actor.name = the htpasswd user and the request fields Distribution fills; a receiver
// that fails (500s), recovers and is restarted shows up on /debug/vars and /metrics and drains to 0.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { descriptor, makeImageManifest, manifestBytes, MT, randomBlob, sha256 } from '../support/oci-client.js';
import { request } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

type T = { after(fn: () => unknown): void };

const USER = 'alice';
const PASSWORD = 'through-the-looking-glass';
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const UA = 'ops-test/1.0';

/** startServer with htpasswd (alice), filesystem storage, one notification endpoint and the debug listener. */
async function startGateway(t: T, endpoint: { name: string; url: string }): Promise<RunningServer> {
  const dir = await makeTempDir('berth-notify-ops-');
  await writeFile(join(dir.path, 'htpasswd'), `${USER}:${await bcrypt.hash(PASSWORD, 4)}\n`);
  const text = `listen: "127.0.0.1:0"
auth: { htpasswd: { realm: Ops Realm, path: htpasswd } }
registry:
  storage:
    filesystem: { rootdirectory: ${JSON.stringify(join(dir.path, 'data'))} }
    delete: { enabled: true }
    maintenance: { uploadpurging: { enabled: false } }
  notifications:
    endpoints:
      - { name: ${endpoint.name}, url: "${endpoint.url}", timeout: 2s, threshold: 2, backoff: 100ms }
  http: { debug: { addr: "127.0.0.1:0" } }
`;
  const server = await startServer(loadConfigFromString(text, join(dir.path, 'gateway.yml')), silentLogger(), { drainMs: 1000 });
  t.after(async () => { await server.close(); await dir.cleanup(); });
  assert.ok(server.debugUrl);
  return server;
}

/** An authenticated client of the gateway: every request carries alice's credentials and UA. */
function client(base: string, auth = basic(USER, PASSWORD)) {
  let n = 0;
  const call = (method: string, path: string, o: { headers?: Record<string, string>; body?: Buffer } = {}) =>
    request(`${base}${path}`, { method, headers: { authorization: auth, 'user-agent': UA, 'x-request-id': `ops-${++n}`, ...o.headers }, body: o.body });
  return {
    call,
    async pushBlob(repo: string, bytes: Buffer): Promise<string> {
      const d = sha256(bytes);
      const r = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(r.status, 201, r.text());
      return d;
    },
  };
}

async function get(url: string) {
  const res = await request(url);
  const text = res.text();
  assert.equal(res.status, 200, `${url}: ${text}`);
  return text;
}

async function endpointVars(server: RunningServer, name: string) {
  const vars = JSON.parse(await get(`${server.debugUrl}/debug/vars`));
  return vars.notifications.endpoints.find((e: { name: string }) => e.name === name);
}

/** The value of one sample in the /metrics text, undefined when absent. */
async function sample(server: RunningServer, name: string, endpoint: string): Promise<number | undefined> {
  const text = await get(`${server.debugUrl}/metrics`);
  const m = new RegExp(`^${name}\\{endpoint="${endpoint}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Polls /debug/vars every 20 ms until `pred` holds for the endpoint; fails after 10 s with the last value. */
async function waitVars(server: RunningServer, name: string, what: string, pred: (e: any) => boolean): Promise<any> {
  let last: unknown;
  return waitUntil(what, async () => {
    const e = last = await endpointVars(server, name);
    return e && pred(e) ? e : undefined;
  }, { timeoutMs: 10_000, intervalMs: 20, detail: () => JSON.stringify(last) });
}

test('through the gateway with htpasswd: every push, pull, mount and delete event has actor.name = the user', async (t) => {
  const hook = await startWebhookReceiver();
  t.after(() => hook.close());
  const server = await startGateway(t, { name: 'actor-hook', url: hook.url });
  const c = client(server.url);

  // a refused request (wrong password) records nothing
  assert.equal((await client(server.url, basic(USER, 'wrong')).call('GET', '/v2/')).status, 401);

  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: randomBlob(4).toString('hex') }));
  const layerBytes = randomBlob(300);
  const cfgDigest = await c.pushBlob('team/app', configBytes);
  const layerDigest = await c.pushBlob('team/app', layerBytes);
  const bytes = manifestBytes(makeImageManifest({ config: descriptor(MT.ociConfig, configBytes), layers: [descriptor(MT.ociLayer, layerBytes)] }));
  const mDigest = sha256(bytes);
  assert.equal((await c.call('PUT', '/v2/team/app/manifests/v1', { body: bytes, headers: { 'content-type': MT.ociManifest } })).status, 201);
  assert.equal((await c.call('GET', '/v2/team/app/manifests/v1', { headers: { accept: MT.ociManifest } })).status, 200);
  assert.equal((await c.call('GET', `/v2/team/app/blobs/${layerDigest}`)).status, 200);
  assert.equal((await c.call('POST', `/v2/other/blobs/uploads/?mount=${layerDigest}&from=team/app`, { headers: { 'content-length': '0' } })).status, 201);
  assert.equal((await c.call('DELETE', `/v2/team/app/manifests/${mDigest}`)).status, 202);
  assert.equal((await c.call('DELETE', `/v2/team/app/blobs/${cfgDigest}`)).status, 202);

  const evs = await hook.waitDelivered(8);
  assert.deepEqual(evs.map((e) => `${e.action} ${e.target.repository} ${e.target.digest} ${e.request.method} ${e.request.id}`), [
    // request.id is the X-Request-Id the gateway accepted (the same id as its log lines)
    `push team/app ${cfgDigest} POST ops-1`, `push team/app ${layerDigest} POST ops-2`, `push team/app ${mDigest} PUT ops-3`,
    `pull team/app ${mDigest} GET ops-4`, `pull team/app ${layerDigest} GET ops-5`, `mount other ${layerDigest} POST ops-6`,
    `delete team/app ${mDigest} DELETE ops-7`, `delete team/app ${cfgDigest} DELETE ops-8`,
  ]);
  const host = new URL(server.url).host;
  for (const e of evs) {
    assert.deepEqual(e.actor, { name: USER }, `${e.action} ${e.target.digest}`);
    // Distribution's RemoteAddr: the first X-Forwarded-For entry, which the gateway sets to the peer.
    assert.equal(e.request.addr, '127.0.0.1');
    assert.equal(e.request.host, host);
    assert.equal(e.request.useragent, UA);
  }
  assert.equal(evs[2].target.url, `${server.url}/v2/team/app/manifests/${mDigest}`);
});

test('a receiver that fails, recovers and is restarted: pending and failures on /debug/vars and /metrics rise, then drain to 0', async (t) => {
  const hook: WebhookReceiver = await startWebhookReceiver();
  t.after(() => hook.close());
  // Credentials in the endpoint URL: sent as Basic auth (as Distribution's Go client does), never shown.
  const secretUrl = hook.url.replace('http://', 'http://hookuser:s3cret-pw@');
  const shownUrl = hook.url.replace('http://', 'http://hookuser:xxxxx@');
  const name = 'restartable';
  const server = await startGateway(t, { name, url: secretUrl });
  const c = client(server.url);

  const idle = await endpointVars(server, name);
  assert.deepEqual(
    { url: idle.url, disabled: idle.disabled, pending: idle.pending, delivered: idle.delivered, failures: idle.failures, backingOff: idle.backingOff },
    { url: shownUrl, disabled: false, pending: 0, delivered: 0, failures: 0, backingOff: false });
  assert.equal(await sample(server, 'berth_notifications_pending', name), 0);
  assert.equal(await sample(server, 'berth_notifications_delivered_total', name), 0);

  // 1. the receiver answers 500: events stay pending, failures count up, the endpoint backs off
  hook.failing = true;
  const digests: string[] = [];
  for (let i = 0; i < 3; i++) digests.push(await c.pushBlob('ops/repo', randomBlob(50 + i)));
  const failing = await waitVars(server, name, 'backing off after threshold failures', (e) => e.failures >= 2 && e.backingOff);
  assert.equal(failing.pending, 3);   // journaled before each push answered; none accepted yet
  assert.equal(failing.delivered, 0);
  assert.ok(failing.consecutiveFailures >= 2);
  assert.ok(!Number.isNaN(Date.parse(failing.nextRetryAt)));
  assert.ok(!Number.isNaN(Date.parse(failing.lastErrorAt)));
  assert.equal(failing.lastError, `POST ${shownUrl}: status 500`);
  assert.equal(failing.lastSuccessAt, undefined);
  assert.equal(await sample(server, 'berth_notifications_pending', name), 3);
  assert.ok((await sample(server, 'berth_notifications_failures_total', name))! >= 2);
  assert.ok((await sample(server, 'berth_notifications_consecutive_failures', name))! >= 2);
  assert.equal(await sample(server, 'berth_notifications_delivered_total', name), 0);

  // 2. it recovers: everything is delivered in order, counters settle
  hook.failing = false;
  const recovered = await waitVars(server, name, 'drained after recovery', (e) => e.pending === 0);
  assert.deepEqual((await hook.waitDelivered(3)).map((e) => e.target.digest), digests);
  assert.equal(recovered.delivered, 3);
  assert.equal(recovered.consecutiveFailures, 0);
  assert.equal(recovered.backingOff, false);
  assert.ok(!Number.isNaN(Date.parse(recovered.lastSuccessAt)));
  assert.equal(await sample(server, 'berth_notifications_pending', name), 0);
  assert.equal(await sample(server, 'berth_notifications_delivered_total', name), 3);
  assert.equal(await sample(server, 'berth_notifications_consecutive_failures', name), 0);
  const failuresBefore = recovered.failures;

  // 3. the receiver is stopped: refused connections are failures too
  await hook.stop();
  for (let i = 0; i < 2; i++) digests.push(await c.pushBlob('ops/repo', randomBlob(60 + i)));
  const down = await waitVars(server, name, 'failures while the receiver is down', (e) => e.failures > failuresBefore && e.pending === 2);
  assert.match(down.lastError, new RegExp(`^POST ${shownUrl.replace(/[.?*+()[\]\\/]/g, '\\$&')}: `));
  assert.equal(await sample(server, 'berth_notifications_pending', name), 2);

  // 4. restarted on the same port: the backlog drains, in order, nothing lost
  await hook.start();
  await waitVars(server, name, 'drained after restart', (e) => e.pending === 0 && e.delivered === 5);
  assert.deepEqual((await hook.waitDelivered(5)).map((e) => e.target.digest), digests);
  assert.equal(await sample(server, 'berth_notifications_pending', name), 0);
  assert.equal(await sample(server, 'berth_notifications_delivered_total', name), 5);
  for (const p of hook.got) assert.equal(p.headers.authorization, basic('hookuser', 's3cret-pw'));
  const vars = await get(`${server.debugUrl}/debug/vars`);
  assert.ok(!vars.includes('s3cret-pw'), 'the endpoint password never appears on /debug/vars');
});
