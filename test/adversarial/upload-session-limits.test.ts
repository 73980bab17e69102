// Issue 14, point 7: unlimited unfinished uploads. A logged-in user floods POST /blobs/uploads/ (the
// attack made 20,000 sessions); with registry.storage.maintenance.uploadlimits set low, only `peruser`
// sessions are stored, the rest get 429 TOOMANYREQUESTS with Retry-After, another user from another
// address pushes as usual, the per-address bound holds users behind one address together, and a cancel
// or commit gives the slot back. A real berth (htpasswd, filesystem storage in a temp dir), loopback only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { pathFor } from '../../src/registry/storage/paths.js';
import { request, type HttpResponse } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';

const sha = (pw: string) => `{SHA}${createHash('sha1').update(pw).digest('base64')}`;
const basic = (user: string) => `Basic ${Buffer.from(`${user}:${user}-pw`).toString('base64')}`;

test('a flood of unfinished uploads is bounded per user and per address; others keep pushing', async (t) => {
  const dir = await makeTempDir('berth-adv-uploads-');
  t.after(() => dir.cleanup());
  const root = join(dir.path, 'data');
  await writeFile(join(dir.path, 'htpasswd'), ['alice', 'bob', 'carol'].map((u) => `${u}:${sha(`${u}-pw`)}\n`).join(''));
  const config = loadConfigFromString(`listen: "127.0.0.1:0"
auth: { htpasswd: { path: htpasswd, cache: true } }
registry:
  storage:
    filesystem: { rootdirectory: ${root} }
    maintenance:
      uploadpurging: { enabled: false }
      uploadlimits: { peruser: 3, peraddress: 5 }
`, join(dir.path, 'gateway.yml'));
  const server = await startServer(config, silentLogger(), { drainMs: 1000 });
  t.after(() => server.close());

  const post = (user: string, repo: string, from = '127.0.0.1') =>
    request(`${server.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { authorization: basic(user) }, localAddress: from });
  const sessionsOn = async (repo: string) =>
    (await readdir(join(root, pathFor({ kind: 'uploadsRoot', name: repo })), { withFileTypes: true }).catch(() => [])).length;
  const refused = (r: HttpResponse) => {
    assert.equal(r.status, 429, r.text());
    assert.equal(r.headers['retry-after'], '60');
    assert.equal(r.json().errors[0].code, 'TOOMANYREQUESTS');
  };

  // The flood: 40 POSTs by alice. Only 3 sessions exist afterwards.
  const answers = [];
  for (let i = 0; i < 40; i++) answers.push(await post('alice', 'flood'));
  assert.deepEqual(answers.slice(0, 3).map((r) => r.status), [202, 202, 202]);
  for (const r of answers.slice(3)) refused(r);
  assert.match(answers[3]!.json().errors[0].detail.reason, /for this user \(limit 3\)/);
  assert.equal(await sessionsOn('flood'), 3);

  // A monolithic upload needs a slot too while it runs: refused, and nothing is left behind.
  const body = Buffer.from('layer bytes');
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  refused(await request(`${server.url}/v2/flood/blobs/uploads/?digest=${digest}`, { method: 'POST', body, headers: { authorization: basic('alice') } }));
  assert.equal(await sessionsOn('flood'), 3);

  // bob, from another address, pushes a blob as usual (POST, PATCH, PUT).
  const start = await post('bob', 'good', '127.0.0.2');
  assert.equal(start.status, 202);
  const patch = await request(`${server.url}${start.headers.location}`, {
    method: 'PATCH', body, headers: { authorization: basic('bob'), 'content-type': 'application/octet-stream' }, localAddress: '127.0.0.2',
  });
  assert.equal(patch.status, 202);
  const put = await request(`${server.url}${patch.headers.location}${patch.headers.location!.includes('?') ? '&' : '?'}digest=${digest}`, {
    method: 'PUT', headers: { authorization: basic('bob') }, localAddress: '127.0.0.2',
  });
  assert.equal(put.status, 201, put.text());

  // Behind alice's address: carol gets 2 sessions (alice's 3 + 2 = peraddress 5), then the address bound.
  assert.deepEqual([(await post('carol', 'c')).status, (await post('carol', 'c')).status], [202, 202]);
  const third = await post('carol', 'c');
  refused(third);
  assert.match(third.json().errors[0].detail.reason, /for this address \(limit 5\)/);

  // alice cancels one session: she (and her address) may start one again.
  const cancel = await request(`${server.url}${answers[0]!.headers.location}`, { method: 'DELETE', headers: { authorization: basic('alice') } });
  assert.equal(cancel.status, 204);
  assert.equal((await post('alice', 'flood')).status, 202);
  refused(await post('alice', 'flood'));
  assert.equal(await sessionsOn('flood'), 3);

  // alice commits one session (monolithic PUT of its data): the slot comes back once more.
  const done = await request(`${server.url}${answers[1]!.headers.location}${answers[1]!.headers.location!.includes('?') ? '&' : '?'}digest=${digest}`, {
    method: 'PUT', body, headers: { authorization: basic('alice') },
  });
  assert.equal(done.status, 201, done.text());
  assert.equal((await post('alice', 'flood')).status, 202);
  assert.equal(await sessionsOn('flood'), 3);
});
