// Issue 14, point 6: a bare-TCP flood reached the descriptor limit; logged-in users then failed (EMFILE on
// storage) and RSS stayed high. Connections are now capped in total (proxy.maxconnections, never above half of
// RLIMIT_NOFILE) and per client address (proxy.maxconnectionsperaddress); TLS handshakes must finish within
// proxy.headertimeout. Caps are set low here so a few dozen sockets show each limit; loopback addresses
// 127.0.0.x stand for different clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from '../support/http.js';
import { makeTestCert } from '../support/tls-certs.js';
import { waitUntil, withDeadline } from '../support/wait.js';
import { BASIC, rawConnect, rss, startBerth, type RawConn, type T } from './conn-support.js';

const auth = { Authorization: BASIC };
const GET_V2 = `GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${BASIC}\r\n\r\n`;

async function flood(t: T, port: number, n: number, from: string): Promise<RawConn[]> {
  const out: RawConn[] = [];
  for (let i = 0; i < n; i++) out.push(await rawConnect(t, port, from));
  return out;
}
const closedCount = (cs: RawConn[]) => cs.filter((c) => c.closed()).length;

test('a bare-TCP flood: the excess over the per-address and total caps is closed at once; a logged-in user is still served', async (t) => {
  const b = await startBerth(t, 'proxy: { maxconnections: 40, maxconnectionsperaddress: 10, headertimeout: 60s }', { auth: true });
  // The user: a keep-alive connection opened before the flood, and a blob pushed (storage needs descriptors).
  const user = await rawConnect(t, b.port, '127.0.0.2');
  user.socket.write(GET_V2);
  let last = await user.response();
  assert.equal(last.status, 200);
  const blob = randomBytes(256 * 1024);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const push = await request(`${b.url}/v2/adv/flood/blobs/uploads/?digest=${digest}`, {
    method: 'POST', body: blob, headers: { ...auth, 'Content-Type': 'application/octet-stream' }, localAddress: '127.0.0.2', fresh: true,
  });
  assert.equal(push.status, 201, push.text());
  const rssBefore = rss();

  // One address opens 30: 10 are kept (until their head deadline), 20 are closed at once.
  const a = await flood(t, b.port, 30, '127.0.0.1');
  await waitUntil('20 of 30 connections from one address to be closed', () => closedCount(a) >= 20,
    { detail: () => `${closedCount(a)} closed` });
  const served = await request(`${b.url}/v2/adv/flood/blobs/${digest}`, { headers: auth, localAddress: '127.0.0.2', fresh: true });
  assert.equal(served.status, 200);
  assert.ok(served.body.equals(blob));
  assert.equal(closedCount(a), 20, 'exactly the excess over maxconnectionsperaddress is closed');

  // Three more addresses, 10 each: the total cap (40) closes what does not fit; the user's open connection still works.
  const more = [...await flood(t, b.port, 10, '127.0.0.3'), ...await flood(t, b.port, 10, '127.0.0.4'), ...await flood(t, b.port, 10, '127.0.0.5')];
  await waitUntil('the total cap to close the excess', () => closedCount(more) >= 1, { detail: () => `${closedCount(more)} closed` });
  const open = [...a, ...more].filter((c) => !c.closed()).length;
  assert.ok(open + 1 <= 40, `${open} flood connections + the user's stay under maxconnections`);
  user.socket.write(GET_V2);
  last = await user.response(last.end);
  assert.equal(last.status, 200, 'the connection opened before the flood is still served');
  await b.cap.waitFor((l) => l.msg === 'connections refused: limit reached', 'the refusal log line');

  // The flood goes away: new connections from its address are accepted again, memory returns near where it was.
  for (const c of [...a, ...more]) c.socket.destroy();
  await waitUntil('connections from the flooding address to be accepted again', async () => {
    const again = await rawConnect(t, b.port, '127.0.0.1');
    again.socket.write(GET_V2);
    const ok = await again.response(0, 2000).then((r) => r.status === 200, () => false);
    again.socket.destroy();
    return ok;
  });
  const rssAfter = rss();
  assert.ok(rssAfter < rssBefore * 1.5 + 64 * 1024 * 1024, `RSS ${rssBefore} before the flood, ${rssAfter} after`);
});

test('TLS: connections that never finish the handshake count against the cap and are closed after proxy.headertimeout', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-adv-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cert = await makeTestCert();
  await writeFile(join(dir, 'c.crt'), cert.cert);
  await writeFile(join(dir, 'c.key'), cert.key);
  const b = await startBerth(t, `tls: { certificate: ${join(dir, 'c.crt')}, key: ${join(dir, 'c.key')} }\n`
    + 'proxy: { headertimeout: 1s, maxconnections: 5 }', { auth: true });
  const stalled = await flood(t, b.port, 5, '127.0.0.1');   // TCP only: no ClientHello, ever
  const refused = await rawConnect(t, b.port, '127.0.0.1');
  await refused.waitClosed('the 6th connection to be refused while 5 handshakes are pending', 5_000);
  for (const c of stalled) await c.waitClosed('a stalled handshake to be closed after headertimeout (1 s) plus slack', 10_000);
  assert.ok(stalled.every((c) => c.text() === ''), 'nothing written to a socket without TLS');
  await b.cap.waitFor((l) => l.msg === 'tls handshake not finished in time', 'the handshake-timeout log line');
  const ok = await request(`${b.url}/v2/`, { headers: auth, ca: cert.cert, fresh: true });
  assert.equal(ok.status, 200);
});

test('descriptors in reserve: the total cap never exceeds half of the open-file limit', async (t) => {
  const b = await startBerth(t, 'proxy: { headertimeout: 60s }', { opts: { fileLimit: 24 } });
  await b.cap.waitFor((l) => l.msg.startsWith('proxy.maxconnections lowered') && l.max === 12, 'the lowered-cap warning');
  const conns = await flood(t, b.port, 20, '127.0.0.1');
  await waitUntil('8 of 20 connections to be refused (cap 12)', () => closedCount(conns) >= 8, { detail: () => `${closedCount(conns)} closed` });
  for (const c of conns) c.socket.destroy();
  await waitUntil('a new connection to be served once the flood is gone', async () => {
    const r = await request(`${b.url}/v2/`, { fresh: true, timeoutMs: 2000 }).catch(() => undefined);
    return r?.status === 200;
  });
});

test('TLS: SIGTERM\'s drain does not wait for handshakes that never finish', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-adv-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cert = await makeTestCert();
  await writeFile(join(dir, 'c.crt'), cert.cert);
  await writeFile(join(dir, 'c.key'), cert.key);
  const b = await startBerth(t, `tls: { certificate: ${join(dir, 'c.crt')}, key: ${join(dir, 'c.key')} }\nproxy: { headertimeout: 60s }`,
    { opts: { drainMs: 30_000 } });
  const stalled = await flood(t, b.port, 3, '127.0.0.1');
  await withDeadline(b.server.close(), 10_000, 'close() with pending handshakes (head deadline 60 s, drain 30 s)');
  for (const c of stalled) await c.waitClosed('a pending handshake to be closed by the drain');
});
