// Issue 14, point 9: Node keeps the first 1000 request headers and drops the rest silently, so an
// Authorization header after 1000 others would be ignored (a 401 for a valid user, or worse, a header a
// proxy in front checked that berth never sees). berth answers 431 and closes instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_REQUEST_HEADERS } from '../../src/gateway/server.js';
import { BASIC, rawConnect, startBerth } from './conn-support.js';

/** GET /v2/ with Host, `pads` filler headers, then Authorization: MAX_REQUEST_HEADERS total means pads = MAX - 2. */
function head(pads: number): string {
  const filler = Array.from({ length: pads }, (_, i) => `X-P${i}: 1\r\n`).join('');
  return `GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n${filler}Authorization: ${BASIC}\r\n\r\n`;
}

test('more than 1000 headers: 431 and the connection closed, never a request with headers dropped', async (t) => {
  const b = await startBerth(t, 'proxy: { maxheadersize: 65536 }', { auth: true });
  for (const pads of [MAX_REQUEST_HEADERS - 1, MAX_REQUEST_HEADERS + 50, 3000]) {
    const c = await rawConnect(t, b.port);
    c.socket.write(head(pads));
    const r = await c.response();
    assert.equal(r.status, 431, `${pads + 2} headers`);
    assert.equal(r.headers.connection, 'close');
    // Node 20's parser keeps the extra header and the gateway answers with the OCI body; Node 22+'s parser
    // itself refuses a head over maxHeadersCount (HPE_HEADER_OVERFLOW), answered as a clientError (no body).
    if (r.body !== '') assert.equal(JSON.parse(r.body).errors[0].detail.limit, MAX_REQUEST_HEADERS);
    await c.waitClosed(`the server to close after ${pads + 2} headers`);
  }
});

test('exactly 1000 headers, Authorization last: served (the limit is not lower than Node\'s own)', async (t) => {
  const b = await startBerth(t, 'proxy: { maxheadersize: 65536 }', { auth: true });
  const c = await rawConnect(t, b.port);
  c.socket.write(head(MAX_REQUEST_HEADERS - 2));
  const r = await c.response();
  assert.equal(r.status, 200);
  assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
  assert.notEqual(r.headers.connection, 'close');
});
