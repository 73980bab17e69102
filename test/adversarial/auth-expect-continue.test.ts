// Issue 14, point 10: `Expect: 100-continue` before auth. A client that asks before sending its body must
// get its 401 (or 404) without `100 Continue`, so it never sends a body that nobody will read; only an
// authorized request is told to continue, and only when its body is about to be read. Raw sockets against a real berth (htpasswd, filesystem storage).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { waitUntil, withDeadline } from '../support/wait.js';
import { basic, startAuthBerth, type T } from './auth-support.js';

interface Raw { socket: net.Socket; text(): string; closed: Promise<void>; isClosed(): boolean }

async function connect(t: T, url: string): Promise<Raw> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  t.after(() => socket.destroy());
  let buf = '';
  let done = false;
  socket.on('data', (d) => { buf += d.toString('latin1'); });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => { done = true; r(); }));
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  return { socket, text: () => buf, closed, isClosed: () => done };
}

/** Sends a request head that expects 100-continue (no body yet) and resolves with the first answer's head. */
async function askToContinue(raw: Raw, path: string, authorization: string | undefined, length: number, method = 'POST'): Promise<string> {
  raw.socket.write(`${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${authorization ? `Authorization: ${authorization}\r\n` : ''}`
    + `Content-Type: application/octet-stream\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`);
  await waitUntil(`an answer to the head of ${method} ${path}`, () => raw.text().includes('\r\n\r\n'),
    { detail: () => JSON.stringify(raw.text()) });
  return raw.text().slice(0, raw.text().indexOf('\r\n\r\n'));
}

test('Expect: 100-continue gets 401/404 without 100 Continue; an authorized request gets 100 Continue, then its answer', async (t) => {
  const users = { alice: 'alice-secret' };
  const b = await startAuthBerth(t, users, { cost: 4 });
  const body = randomBytes(64 * 1024);
  const digest = 'sha256:' + createHash('sha256').update(body).digest('hex');
  const upload = `/v2/team/app/blobs/uploads/?digest=${digest}`;

  const alice = basic('alice', users.alice);
  for (const [what, method, path, authorization, status] of [
    ['no credentials', 'POST', upload, undefined, 401],
    ['a wrong password', 'POST', upload, basic('alice', 'wrong'), 401],
    ['an unknown user', 'POST', upload, basic('mallory', 'x'), 401],
    ['a path berth does not serve', 'POST', '/upload', alice, 404],
    // Authorized, but refused before the body is needed: not asked for either.
    ['an unknown upload session', 'PATCH', '/v2/team/app/blobs/uploads/0b7c4c1e-1b1a-4a59-9d51-3c1f5e0e0f00', alice, 404],
    ['an invalid digest', 'POST', '/v2/team/app/blobs/uploads/?digest=sha256:nothex', alice, 400],
  ] as const) {
    const raw = await connect(t, b.url);
    const head = await askToContinue(raw, path, authorization, body.length, method);
    assert.match(head, new RegExp(`^HTTP/1\\.1 ${status} `), `${what}: the final answer comes first`);
    assert.match(head, /\r\nconnection: close/i, `${what}: the body was never read, so the connection ends`);
    await withDeadline(raw.closed, 10_000, `${what}: the server to close the connection`);
    assert.ok(!raw.text().includes('100 Continue'), `${what}: never asked for the body: ${JSON.stringify(raw.text())}`);
    if (status === 401) assert.match(head, /\r\nwww-authenticate: Basic realm="Test Realm"/i);
  }

  // Authorized: 100 Continue first, nothing else until the body comes; then the blob is created.
  const raw = await connect(t, b.url);
  const head = await askToContinue(raw, upload, alice, body.length);
  assert.equal(head, 'HTTP/1.1 100 Continue');
  raw.socket.write(body);
  await waitUntil('the answer after the body', () => /\r\n\r\nHTTP\/1\.1 \d{3} /.test(raw.text()),
    { detail: () => JSON.stringify(raw.text().slice(0, 300)) });
  assert.match(raw.text(), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 Created\r\n/);
  assert.ok(!raw.isClosed(), 'the connection stays usable');
});
