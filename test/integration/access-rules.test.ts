// Access rules (auth.access) enforced by a real berth (startServer in-process, real sockets, in-memory storage):
// the issue's example as written plus an admin and a sandbox anyone may push to. 401 with a challenge without
// credentials, 403 DENIED when authenticated and refused, anonymous pulls of public/**, the catalog filtered by
// pull rights with pagination intact, a mount without pull on `from` turned into a plain upload session, the log
// line's access and rule; anonymous-only mode (no htpasswd); the same rules in sidecar mode in front of an upstream.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import bcrypt from 'bcryptjs';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/gateway/server.js';
import { request, type HttpResponse } from '../support/http.js';
import { descriptor, makeImageManifest, manifestBytes, MT, parseNextLink, randomBlob, sha256 } from '../support/oci-client.js';
import { distributionAvailable, startDistribution } from '../support/distribution.js';
import { captureLog, type CapturedLog } from '../support/tls-certs.js';
import { makeTempDir } from '../support/tmp.js';

const PASSWORD = 'pw-for-tests';
const USERS = ['alice', 'bob', 'root'];
const basic = (u: string, p = PASSWORD) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const EMPTY_BASIC = `Basic ${Buffer.from(':').toString('base64')}`;   // what containers/image sends without credentials

const RULES = `
  access:
    groups: { devs: [alice] }
    admins: [root]
    rules:
      - { repositories: ["public/**"], pull: ["*", anonymous] }
      - { repositories: ["team/**"], pull: ["@devs"], push: ["@devs"] }
      - { repositories: ["**"], pull: ["*"] }
      - { repositories: ["sandbox/**"], push: ["*"] }
`;

interface Gw { server: RunningServer; url: string; cap: CapturedLog; dir: string }

async function gateway(t: TestContext, yaml: string, o: { htpasswd?: boolean; upstream?: string } = {}): Promise<Gw> {
  const tmp = await makeTempDir('berth-access-');
  t.after(() => tmp.cleanup());
  let text = `listen: 127.0.0.1:0\n${o.upstream ? `upstreams: { v2: ${o.upstream} }\n` : 'registry: { storage: { inmemory: {} } }\n'}auth:\n`;
  if (o.htpasswd !== false) {
    const lines = await Promise.all(USERS.map(async (u) => `${u}:${await bcrypt.hash(PASSWORD, 4)}`));
    await writeFile(join(tmp.path, 'htpasswd'), `${lines.join('\n')}\n`);
    text += '  htpasswd: { realm: Test Realm, path: htpasswd }\n';
  }
  const config = loadConfigFromString(text + yaml, join(tmp.path, 'gateway.yml'));
  const cap = captureLog('info');
  const server = await startServer(config, cap.log, { drainMs: 1000 });
  t.after(() => server.close());
  return { server, url: server.url, cap, dir: tmp.path };
}

function call(base: string, method: string, path: string, auth?: string, extra: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<HttpResponse> {
  return request(`${base}${path}`, { method, headers: { accept: `${MT.ociManifest}, application/json`, ...(auth ? { authorization: auth } : {}), ...extra.headers }, body: extra.body });
}

/** A small image pushed by `user` (monolithic blob uploads, then the manifest) → the layer's digest. */
async function push(base: string, user: string, repo: string, tag = 'latest'): Promise<{ layer: string }> {
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', repo }));
  const layerBytes = randomBlob(256);
  for (const b of [configBytes, layerBytes]) {   // POST, then PUT ?digest= with the bytes (registry:2 has no one-step POST)
    const started = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`, basic(user));
    assert.equal(started.status, 202, `${user} start upload to ${repo}: ${started.status} ${started.text()}`);
    const loc = new URL(started.headers.location!, base);
    loc.searchParams.set('digest', sha256(b));
    const res = await request(loc, { method: 'PUT', headers: { authorization: basic(user), 'content-type': 'application/octet-stream' }, body: b });
    assert.equal(res.status, 201, `${user} push blob to ${repo}: ${res.status} ${res.text()}`);
  }
  const bytes = manifestBytes(makeImageManifest({ config: descriptor(MT.ociConfig, configBytes), layers: [descriptor(MT.ociLayer, layerBytes)] }));
  const res = await call(base, 'PUT', `/v2/${repo}/manifests/${tag}`, basic(user), { headers: { 'content-type': MT.ociManifest }, body: bytes });
  assert.equal(res.status, 201, `${user} push manifest to ${repo}: ${res.status} ${res.text()}`);
  return { layer: sha256(layerBytes) };
}

const code = (res: HttpResponse) => (res.headers['content-type']?.includes('json') && res.body.length ? res.json().errors?.[0]?.code : undefined);

/** Every name of the catalog as `auth` sees it, page by page (n per page), and how many pages it took. */
async function catalogPages(base: string, auth: string | undefined, n: number): Promise<{ names: string[]; pages: string[][] }> {
  const pages: string[][] = [];
  let path = `/v2/_catalog?n=${n}`;
  for (let i = 0; i < 20; i++) {
    const res = await call(base, 'GET', path, auth);
    assert.equal(res.status, 200, `catalog ${path}: ${res.status} ${res.text()}`);
    pages.push(res.json().repositories);
    const next = parseNextLink(res);
    if (!next) return { names: pages.flat(), pages };
    path = `${next.path}?${next.params}`;
  }
  throw new Error('catalog: more than 20 pages');
}

test('embedded: the issue example, enforced (401 / 403 DENIED / anonymous pulls / catalog / mounts / log)', async (t) => {
  const gw = await gateway(t, RULES);
  const { url } = gw;
  const team = await push(url, 'root', 'team/app');          // an admin may push anywhere
  await push(url, 'root', 'public/x');
  await push(url, 'root', 'other/x');
  await push(url, 'alice', 'team/lib');                       // alice may push under team/**

  const rows: [string, string, string | undefined, number, string?][] = [
    // user: undefined = no credentials
    ['GET', '/v2/', undefined, 401, 'UNAUTHORIZED'],          // clients learn how to log in here
    ['GET', '/v2/', basic('bob'), 200],
    ['GET', '/v2/public/x/manifests/latest', undefined, 200],
    ['GET', '/v2/public/x/manifests/latest', EMPTY_BASIC, 200],
    ['HEAD', '/v2/public/x/manifests/latest', undefined, 200],
    ['GET', '/v2/public/x/tags/list', undefined, 200],
    ['GET', '/v2/other/x/manifests/latest', undefined, 401, 'UNAUTHORIZED'],
    ['GET', '/v2/other/x/manifests/latest', EMPTY_BASIC, 401, 'UNAUTHORIZED'],
    ['POST', '/v2/public/x/blobs/uploads/', undefined, 401, 'UNAUTHORIZED'],
    ['GET', '/v2/other/x/manifests/latest', basic('bob'), 200],
    ['GET', '/v2/public/x/manifests/latest', basic('bob'), 200],
    ['GET', '/v2/team/app/manifests/latest', basic('bob'), 403, 'DENIED'],
    ['GET', '/v2/team/app/tags/list', basic('bob'), 403, 'DENIED'],
    ['GET', `/v2/team/app/blobs/${team.layer}`, basic('bob'), 403, 'DENIED'],
    ['GET', `/v2/team/app/referrers/${team.layer}`, basic('bob'), 403, 'DENIED'],
    ['POST', '/v2/public/x/blobs/uploads/', basic('bob'), 403, 'DENIED'],
    ['POST', '/v2/other/x/blobs/uploads/', basic('bob'), 403, 'DENIED'],
    ['POST', '/v2/team/app/blobs/uploads/', basic('bob'), 403, 'DENIED'],
    ['GET', '/v2/team/app/manifests/latest', basic('bob', 'wrong'), 401, 'UNAUTHORIZED'],
    ['POST', '/v2/team/app/blobs/uploads/', basic('alice'), 202],
    ['GET', '/v2/team/app/manifests/latest', basic('alice'), 200],
    ['POST', '/v2/other/x/blobs/uploads/', basic('alice'), 403, 'DENIED'],
    ['DELETE', '/v2/team/app/manifests/latest', basic('alice'), 403, 'DENIED'],
    ['POST', '/v2/sandbox/b/blobs/uploads/', basic('bob'), 202],
  ];
  for (const [method, path, auth, status, want] of rows) {
    const who = auth === undefined ? 'anonymous' : auth === EMPTY_BASIC ? 'empty Basic' : Buffer.from(auth.slice(6), 'base64').toString().split(':')[0];
    const res = await call(url, method, path, auth);
    assert.equal(res.status, status, `${who} ${method} ${path}: ${res.status} ${res.text()}`);
    if (want && method !== 'HEAD') assert.equal(code(res), want, `${who} ${method} ${path}: ${res.text()}`);
    if (status === 401) assert.equal(res.headers['www-authenticate'], 'Basic realm="Test Realm"', `${who} ${method} ${path}`);
    if (status === 403) {
      assert.equal(res.headers['www-authenticate'], undefined);
      assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
      assert.deepEqual(res.json().errors[0].message, 'requested access to the resource is denied');
    }
  }

  // The catalog lists what the caller may pull; pagination stays whole after filtering (no empty last page).
  const all = ['other/x', 'public/x', 'team/app', 'team/lib'];
  assert.deepEqual((await catalogPages(url, basic('root'), 100)).names, all);
  assert.deepEqual((await catalogPages(url, basic('alice'), 100)).names, all);
  assert.deepEqual((await catalogPages(url, basic('bob'), 100)).names, ['other/x', 'public/x']);
  assert.deepEqual((await catalogPages(url, basic('bob'), 1)).pages, [['other/x'], ['public/x']]);
  assert.deepEqual((await catalogPages(url, basic('alice'), 3)).pages, [['other/x', 'public/x', 'team/app'], ['team/lib']]);
  assert.deepEqual((await catalogPages(url, undefined, 1)).pages, [['public/x']]);   // some rule grants anonymous pulls
  assert.deepEqual((await catalogPages(url, EMPTY_BASIC, 100)).names, ['public/x']);

  // A mount needs pull on `from`: bob (may push to sandbox/**) from public/x mounts (201), from team/app he gets a
  // plain upload session (202) and the blob is not linked into sandbox/b.
  const pub = await call(url, 'GET', '/v2/public/x/manifests/latest', basic('bob'));
  const pubLayer = pub.json().layers[0].digest as string;
  const mounted = await call(url, 'POST', `/v2/sandbox/b/blobs/uploads/?mount=${pubLayer}&from=public/x`, basic('bob'));
  assert.equal(mounted.status, 201, mounted.text());
  assert.equal(mounted.headers.location, `/v2/sandbox/b/blobs/${pubLayer}`);
  const refused = await call(url, 'POST', `/v2/sandbox/b/blobs/uploads/?mount=${team.layer}&from=team/app`, basic('bob'));
  assert.equal(refused.status, 202, refused.text());
  assert.match(refused.headers.location ?? '', /^\/v2\/sandbox\/b\/blobs\/uploads\/[^?/]+/);
  assert.equal((await call(url, 'HEAD', `/v2/sandbox/b/blobs/${team.layer}`, basic('bob'))).status, 404);

  // The access line says allowed or denied, and by which rule.
  const line = (path: string, user: string | undefined) => gw.cap.lines.find((l) => l.msg === 'request completed' && l.path === path && l.user === user);
  assert.deepEqual(pick(line('/v2/team/app/tags/list', 'bob')), { status: 403, access: 'denied', rule: 'rules[1] team/**' });
  assert.deepEqual(pick(line('/v2/other/x/manifests/latest', 'bob')), { status: 200, access: 'allowed', rule: 'rules[2] **' });
  assert.deepEqual(pick(line('/v2/team/lib/manifests/latest', 'alice')), { status: 201, access: 'allowed', rule: 'rules[1] team/**' });
  assert.deepEqual(pick(line('/v2/team/app/manifests/latest', 'root')), { status: 201, access: 'allowed', rule: 'admins' });
  assert.deepEqual(pick(line('/v2/other/x/blobs/uploads/', undefined)), undefined);
  const anonDenied = gw.cap.lines.find((l) => l.msg === 'request completed' && l.path === '/v2/other/x/manifests/latest' && l.status === 401);
  assert.deepEqual(pick(anonDenied), { status: 401, access: 'denied', rule: 'rules[2] **' });
  const mountLine = gw.cap.lines.find((l) => l.msg === 'request completed' && l.path === '/v2/sandbox/b/blobs/uploads/' && l.status === 202 && /mount refused/.test(l.rule));
  assert.ok(mountLine, 'the refused mount is logged');
  assert.match(mountLine.rule, /mount refused: rules\[1\] team\/\*\*/);
});

function pick(l: Record<string, any> | undefined): Record<string, unknown> | undefined {
  return l && { status: l.status, access: l.access, rule: l.rule };
}

test('anonymous-only (no htpasswd): every request is anonymous; refused ones get 403 DENIED (nothing to log in with)', async (t) => {
  const { url } = await gateway(t, `
  access:
    rules:
      - { repositories: ["public/**"], pull: [anonymous], push: [anonymous] }
`, { htpasswd: false });
  assert.equal((await call(url, 'GET', '/v2/')).status, 200);
  const pushed = await call(url, 'POST', `/v2/public/x/blobs/uploads/?digest=${sha256('x')}`, undefined, { body: Buffer.from('x'), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(pushed.status, 201, pushed.text());
  assert.equal((await call(url, 'GET', `/v2/public/x/blobs/${sha256('x')}`)).status, 200);
  const denied = await call(url, 'GET', '/v2/other/x/tags/list');
  assert.equal(denied.status, 403);
  assert.equal(code(denied), 'DENIED');
  assert.equal(denied.headers['www-authenticate'], undefined);
  assert.equal((await call(url, 'POST', '/v2/other/x/blobs/uploads/')).status, 403);
  assert.deepEqual((await catalogPages(url, undefined, 10)).names, ['public/x']);
});

test('htpasswd without rules: every authenticated user may still do everything (nginx parity)', async (t) => {
  const { url } = await gateway(t, '');
  await push(url, 'bob', 'team/app');
  assert.equal((await call(url, 'GET', '/v2/team/app/manifests/latest', basic('alice'))).status, 200);
  assert.equal((await call(url, 'GET', '/v2/team/app/manifests/latest')).status, 401);
  assert.deepEqual((await catalogPages(url, basic('alice'), 10)).names, ['team/app']);
});

const skipDistribution = !distributionAvailable() && process.env.CI !== 'true' ? 'docker-registry (Distribution 2.8) not installed' : false;

test('sidecar: the same rules at the gateway in front of a real registry:2 (refusals, filtered catalog, mounts)', { skip: skipDistribution }, async (t) => {
  const dist = await startDistribution(t);
  const { url } = await gateway(t, RULES, { upstream: dist.url });
  const team = await push(url, 'root', 'team/app');
  await push(url, 'root', 'public/x');
  await push(url, 'root', 'other/x');
  await push(url, 'alice', 'team/lib');
  const rows: [string, string, string | undefined, number, string?][] = [
    ['GET', '/v2/public/x/manifests/latest', undefined, 200],
    ['GET', '/v2/other/x/manifests/latest', undefined, 401, 'UNAUTHORIZED'],
    ['GET', '/v2/team/app/manifests/latest', basic('bob'), 403, 'DENIED'],
    ['POST', '/v2/other/x/blobs/uploads/', basic('alice'), 403, 'DENIED'],
    ['POST', '/v2/team/app/blobs/uploads/', basic('bob'), 403, 'DENIED'],
    ['GET', '/v2/other/x/manifests/latest', basic('bob'), 200],
  ];
  for (const [method, path, auth, status, want] of rows) {
    const res = await call(url, method, path, auth);
    assert.equal(res.status, status, `${method} ${path}: ${res.status} ${res.text()}`);
    if (want) assert.equal(code(res), want);
  }
  // The gateway answers the catalog from the upstream's pages, keeping what the caller may pull.
  assert.deepEqual((await catalogPages(url, basic('root'), 100)).names, ['other/x', 'public/x', 'team/app', 'team/lib']);
  assert.deepEqual((await catalogPages(url, basic('bob'), 1)).pages, [['other/x'], ['public/x']]);
  assert.deepEqual((await catalogPages(url, basic('alice'), 3)).pages, [['other/x', 'public/x', 'team/app'], ['team/lib']]);
  assert.deepEqual((await catalogPages(url, undefined, 5)).pages, [['public/x']]);
  assert.equal((await call(url, 'GET', '/v2/_catalog?n=5000', basic('bob'))).status, 400);
  // A mount bob may not pull from reaches registry:2 without mount/from: a plain upload session.
  const refused = await call(url, 'POST', `/v2/sandbox/b/blobs/uploads/?mount=${team.layer}&from=team/app`, basic('bob'));
  assert.equal(refused.status, 202, refused.text());
  assert.equal((await call(url, 'HEAD', `/v2/sandbox/b/blobs/${team.layer}`, basic('bob'))).status, 404);
  const pub = (await call(url, 'GET', '/v2/public/x/manifests/latest', basic('bob'))).json().layers[0].digest as string;
  assert.equal((await call(url, 'POST', `/v2/sandbox/c/blobs/uploads/?mount=${pub}&from=public/x`, basic('bob'))).status, 201);
});

test('sidecar: a filtered catalog spanning several upstream pages (n=1000 each) pages correctly', async (t) => {
  // The upstream: a plain berth (no auth) on its own socket; 1010 repositories, so the gateway reads two pages.
  const upstream = await gateway(t, '', { htpasswd: false });
  const names = Array.from({ length: 1010 }, (_, i) => `r/${String(i).padStart(4, '0')}`);
  const blob = Buffer.from('x');
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(names.slice(i, i + 20).map(async (name) => {
      const res = await call(upstream.url, 'POST', `/v2/${name}/blobs/uploads/?digest=${sha256(blob)}`, undefined,
        { headers: { 'content-type': 'application/octet-stream' }, body: blob });
      assert.equal(res.status, 201, `${name}: ${res.status} ${res.text()}`);
    }));
  }
  const { url } = await gateway(t, `
  access:
    rules:
      - { repositories: ["r/*5"], pull: ["*"] }
      - { repositories: ["**"], pull: [root] }
`, { upstream: upstream.url });
  const visible = names.filter((n) => n.endsWith('5'));
  assert.equal(visible.length, 101);
  const bob = await catalogPages(url, basic('bob'), 50);
  assert.deepEqual(bob.pages.map((p) => p.length), [50, 50, 1]);
  assert.deepEqual(bob.names, visible);
  assert.deepEqual((await catalogPages(url, basic('root'), 1000)).names, names);
  // `last` from the client, then the gateway's own cursor across the upstream's page boundary.
  const res = await call(url, 'GET', '/v2/_catalog?n=3&last=r/0985', basic('bob'));
  assert.deepEqual(res.json().repositories, ['r/0995', 'r/1005']);
  assert.equal(res.headers.link, undefined);
});

test('SIGHUP (server.reload) re-reads the groups file: a new member may push; a broken file keeps the groups in force', async (t) => {
  const groupsDir = await makeTempDir('berth-groups-');
  t.after(() => groupsDir.cleanup());
  const groupsFile = join(groupsDir.path, 'groups.yml');
  await writeFile(groupsFile, 'devs: [alice]\n');
  const gw = await gateway(t, `
  access:
    groupsfile: ${groupsFile}
    rules:
      - { repositories: ["team/**"], pull: ["@devs"], push: ["@devs"] }
`);
  const startUpload = (user: string) => call(gw.url, 'POST', '/v2/team/app/blobs/uploads/', basic(user));
  assert.equal((await startUpload('alice')).status, 202);
  assert.equal((await startUpload('bob')).status, 403, 'bob is not in devs yet');

  await writeFile(groupsFile, 'devs: [alice, bob]\n');
  await gw.server.reload();
  assert.equal((await startUpload('bob')).status, 202, 'bob was added to devs and the file reloaded');
  assert.ok(gw.cap.lines.some((l) => l.msg === 'access rules reloaded (groups file)'));

  await writeFile(groupsFile, 'devs: [alice, bob\n');   // broken YAML
  await gw.server.reload();
  assert.ok(gw.cap.lines.some((l) => l.level === 50 && l.key === 'auth.access.groupsfile' && /keeping the current ones/.test(l.msg)),
    'the broken file is logged at error, by key');
  assert.equal((await startUpload('bob')).status, 202, 'the groups in force are kept');
  assert.equal((await startUpload('alice')).status, 202);
});
