// Issue 14, point 11: a deleted htpasswd file (or one replaced by a directory) must fail closed, as nginx
// does: every request 401 (cached credentials included) until a valid file appears, with one clear log line
// per outage, and authentication resumes by itself when the file is back. Against a real berth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { authGet, basic, htpasswdText, pushSmallImage, startAuthBerth } from './auth-support.js';

test('a deleted or directory-replaced htpasswd file refuses everyone until a valid file is back; one log line per outage', async (t) => {
  const users = { alice: 'alice-secret', bob: 'bob-secret' };
  const b = await startAuthBerth(t, users, { cost: 4 });
  const alice = basic('alice', users.alice);
  const img = await pushSmallImage(b.url, alice, 'team/app', 'v1');
  assert.equal((await authGet(b.url, img.manifest, alice)).status, 200, 'alice is in (and cached)');
  const outageLines = () => b.cap.lines.filter((l) => /htpasswd file unusable/.test(l.msg));
  const expectRefused = async (what: string) => {
    for (const [who, auth] of [['alice (cached)', alice], ['bob', basic('bob', users.bob)], ['anyone', basic('x', 'y')], ['no credentials', undefined]] as const) {
      for (const path of ['/v2/', img.manifest]) {
        const r = await authGet(b.url, path, auth);
        assert.equal(r.status, 401, `${what}: ${who} on ${path}`);
        assert.equal(r.headers['www-authenticate'], 'Basic realm="Test Realm"');
        assert.deepEqual(r.json(), { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
      }
    }
  };

  // 1. rm of the file.
  await rm(b.htpasswd);
  await expectRefused('file deleted');
  assert.equal(outageLines().length, 1, 'one log line for the outage, not one per request');
  assert.equal(outageLines()[0].level, 50, 'at error level');
  assert.equal(outageLines()[0].file, b.htpasswd);
  assert.equal(outageLines()[0].reason, 'missing');
  // The file is back (only bob now): authentication resumes at the next request, with the new table.
  await writeFile(b.htpasswd, await htpasswdText({ bob: users.bob }, 4));
  assert.equal((await authGet(b.url, img.manifest, basic('bob', users.bob))).status, 200);
  assert.equal((await authGet(b.url, img.manifest, alice)).status, 401, 'alice is no longer in the file');
  assert.ok(b.cap.lines.some((l) => /htpasswd file is back/.test(l.msg)));

  // 2. The file replaced by a directory.
  await rm(b.htpasswd);
  await mkdir(b.htpasswd);
  await expectRefused('file replaced by a directory');
  assert.equal(outageLines().length, 2, 'one more line for the second outage');
  assert.equal(outageLines()[1].reason, 'a directory');
  await rm(b.htpasswd, { recursive: true });
  await writeFile(b.htpasswd, await htpasswdText(users, 4));
  assert.equal((await authGet(b.url, img.manifest, alice)).status, 200);
  assert.equal((await authGet(b.url, img.manifest, basic('bob', users.bob))).status, 200);
  assert.equal(outageLines().length, 2);
});
