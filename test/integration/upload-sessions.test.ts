// Upload sessions shared by two registry apps on one storage root (two processes, as far as in-memory state
// goes): each app remembers the start time of sessions it has seen, but the data file decides whether a
// session exists and how big it is, so a session cancelled or committed by the other app is unknown here too.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startRegistry } from '../support/registry-server.js';
import { locationPath, randomBlob, sha256, startUpload, withQuery } from '../support/oci-client.js';
import { request } from '../support/http.js';

const octet = { 'content-type': 'application/octet-stream' };

describe('upload sessions across two apps on one root', () => {
  it('a session cancelled or committed by the other app answers 404 here; sizes come from storage', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'berth-sessions-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const a = await startRegistry({ root });
    t.after(() => a.close());
    const b = await startRegistry({ root });
    t.after(() => b.close());
    const bytes = randomBlob(50_000);

    // Started and PATCHed on a (a remembers it), cancelled on b.
    let loc = await startUpload(a.url, 'us/one');
    const p1 = await request(`${a.url}${loc}`, { method: 'PATCH', headers: { ...octet, 'content-range': '0-9999' }, body: bytes.subarray(0, 10_000) });
    assert.equal(p1.status, 202, p1.text());
    loc = locationPath(a.url, p1);
    assert.equal((await request(`${b.url}${loc}`, { method: 'DELETE' })).status, 204);
    for (const [m, body] of [['GET', undefined], ['PATCH', bytes.subarray(10_000)]] as const) {
      const r = await request(`${a.url}${loc}`, { ...body ? { headers: { ...octet, 'content-range': `10000-${bytes.length - 1}` }, body } : {}, method: m });
      assert.equal(r.status, 404, `${m} after the other app cancelled: ${r.text()}`);
    }

    // Started on a, continued on b: a sees b's bytes; committed on b: a answers 404.
    loc = await startUpload(a.url, 'us/two');
    const p2 = await request(`${a.url}${loc}`, { method: 'PATCH', headers: { ...octet, 'content-range': '0-9999' }, body: bytes.subarray(0, 10_000) });
    assert.equal(p2.status, 202, p2.text());
    loc = locationPath(a.url, p2);
    const p3 = await request(`${b.url}${loc}`, { method: 'PATCH', headers: { ...octet, 'content-range': `10000-${bytes.length - 1}` }, body: bytes.subarray(10_000) });
    assert.equal(p3.status, 202, p3.text());
    const st = await request(`${a.url}${loc}`);
    assert.equal(st.status, 204, st.text());
    assert.equal(st.headers.range, `0-${bytes.length - 1}`);
    const put = await request(`${b.url}${withQuery(loc, { digest: sha256(bytes) })}`, { method: 'PUT' });
    assert.equal(put.status, 201, put.text());
    assert.equal((await request(`${a.url}${loc}`)).status, 404);
    assert.equal((await request(`${a.url}${withQuery(loc, { digest: sha256(bytes) })}`, { method: 'PUT' })).status, 404);
    assert.deepEqual((await request(`${a.url}/v2/us/two/blobs/${sha256(bytes)}`)).body, bytes);
  });
});
