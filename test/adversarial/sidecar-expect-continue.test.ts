// Sidecar mode in front of the real Distribution 2.8.2 (drop-in parity with the nginx recipe), for clients that
// send `Expect: 100-continue` (curl does for bodies over 1 MiB; so do some CI upload tools). The gateway answers the
// client's `100 Continue` itself once the request is authorized and its body is read, as nginx does, so the
// upstream is not asked again: an upstream that answers early (an unknown upload session) must reach the client as
// its own answer, never as a 502, and an upload that proceeds must complete. Raw sockets, so the exchange is exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { distributionAvailable, startDistribution } from '../support/distribution.js';
import { request } from '../support/http.js';
import { waitUntil } from '../support/wait.js';
import { BASIC, rawConnect, startBerth, type T } from './conn-support.js';

const skip = distributionAvailable() ? false : 'docker-registry (Distribution 2.8.2) is not installed';

/** Sends a head with `Expect: 100-continue`, waits for `100 Continue`, sends the body; resolves with the final answer. */
async function expectContinue(t: T, port: number, method: string, path: string, body: Buffer) {
  const c = await rawConnect(t, port);
  c.socket.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${BASIC}\r\n`
    + `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
  await waitUntil(`100 Continue for ${method} ${path}`, () => /^HTTP\/1\.1 100 /.test(c.text()), { timeoutMs: 10_000, detail: () => JSON.stringify(c.text().slice(0, 300)) });
  const from = c.text().indexOf('\r\n\r\n') + 4;
  c.socket.write(body);
  return c.response(from, 20_000);
}

test('sidecar before Distribution: Expect: 100-continue gets the upstream\'s own answers (404 early, 201 after the body), never 502', { skip }, async (t) => {
  const d = await startDistribution(t);
  const b = await startBerth(t, `upstreams: { v2: "${d.url}" }`, { auth: true });
  const body = randomBytes(3 * 1024 * 1024);
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;

  // What Distribution itself answers a PATCH of a session it does not know (asked directly, no Expect).
  const unknown = (i: number) => `/v2/sc/app/blobs/uploads/0b7c4c1e-1b1a-4a59-9d51-3c1f5e0e0f0${i}`;
  const direct = await request(`${d.url}${unknown(9)}`, { method: 'PATCH', body, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(direct.status, 404);
  const code = direct.json().errors[0].code as string;
  for (let i = 0; i < 5; i++) {   // the early answer races the body: a few rounds
    const r = await expectContinue(t, b.port, 'PATCH', unknown(i), body);
    assert.equal(r.status, 404, `round ${i}: ${r.body.slice(0, 200)}`);
    assert.equal(JSON.parse(r.body).errors[0].code, code, `round ${i}: Distribution's own error`);
  }

  const start = await request(`${b.url}/v2/sc/app/blobs/uploads/`, { method: 'POST', headers: { authorization: BASIC } });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.location!, b.url);
  location.searchParams.set('digest', digest);
  const put = await expectContinue(t, b.port, 'PUT', `${location.pathname}${location.search}`, body);
  assert.equal(put.status, 201, put.body.slice(0, 200));
  const got = await request(`${b.url}/v2/sc/app/blobs/${digest}`, { headers: { authorization: BASIC } });
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(body));
});
