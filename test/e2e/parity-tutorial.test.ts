// Issue 15's acceptance: berth runs the tutorials' own material. A registry:2-style config.yml with the
// `storage.cache.layerinfo` alias (the 2.8 name a tutorial uses), a self-signed certificate made by `openssl req`
// as the tutorials make it, and an `htpasswd -c` file mixing apr1, bcrypt and SHA-512 crypt lines: check-config
// says ok (what serve will say), then the built CLI serves it and skopeo and podman push and pull over verified TLS
// with each kind of user; the access lines name the user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSandbox, run, skipUnless } from '../support/clients.js';
import { writeOciLayout } from '../support/images.js';
import { runCli, startBerth } from '../support/processes.js';
import { request } from '../support/http.js';

type T = { after(fn: () => unknown): void };

async function workDir(t: T): Promise<string> {
  const dir = join(tmpdir(), `berth-tutorial-e2e-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}

test('tutorial material: config.yml with layerinfo, an openssl self-signed certificate, a mixed htpasswd -c file; skopeo and podman', { skip: skipUnless('skopeo', 'podman', 'htpasswd') }, async (t) => {
  const dir = await workDir(t);
  // The certificate as the registry:2 tutorials make it (openssl req -x509 with the host as CN and SAN).
  const crt = join(dir, 'domain.crt'); const key = join(dir, 'domain.key');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-keyout', key, '-out', crt,
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  // htpasswd -c with one bcrypt user, then apr1 and SHA-512 crypt users added to the same file.
  const users = { bcrypt: `pw-${randomBytes(3).toString('hex')}`, apr1: `pw-${randomBytes(3).toString('hex')}`, crypt: `pw-${randomBytes(3).toString('hex')}` };
  const htpasswd = join(dir, 'htpasswd');
  await run('htpasswd', ['-Bbc', htpasswd, 'bcrypt', users.bcrypt]);
  await run('htpasswd', ['-mb', htpasswd, 'apr1', users.apr1]);
  const sha512 = (await run('openssl', ['passwd', '-6', users.crypt])).stdout.trim();
  await writeFile(htpasswd, `${await readFile(htpasswd, 'utf8')}crypt:${sha512}\n`);
  const root = join(dir, 'data');
  const text = [
    'version: 0.1',
    'log:', '  fields:', '    service: registry',
    'storage:',
    '  cache:', '    layerinfo: inmemory',
    '  filesystem:', `    rootdirectory: ${root}`,
    'http:', '  addr: 127.0.0.1:0', '  tls:', `    certificate: ${crt}`, `    key: ${key}`,
    'auth:', '  htpasswd:', '    realm: basic-realm', `    path: ${htpasswd}`,
    '',
  ].join('\n');
  const file = join(dir, 'config.yml');
  await writeFile(file, text);

  const check = await runCli(['check-config', file]);
  assert.deepEqual([check.code, check.stdout], [0, `${file}: ok\n`], check.stderr);
  const berth = await startBerth({ configYaml: text, root });   // the same text, served by the built CLI
  t.after(() => berth.close());
  assert.match(berth.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const ca = await readFile(crt, 'utf8');
  assert.equal((await request(`${berth.url}/v2/`, { ca })).status, 401);

  const sb = await createSandbox([]);
  t.after(() => sb.cleanup());
  const trust = join(dir, 'trust');
  await mkdir(trust);
  await copyFile(crt, join(trust, 'ca.crt'));
  const img = await writeOciLayout(join(dir, 'src'), { layers: [{ size: 96 * 1024, kind: 'random' }] });
  for (const [user, password] of Object.entries(users)) {
    const ref = `docker://${berth.host}/tutorial/${user}:v1`;
    await sb.skopeo(['copy', '--dest-cert-dir', trust, '--dest-creds', `${user}:${password}`, img.ref, ref]);
    const out = join(dir, `out-${user}`);
    await sb.skopeo(['copy', '--src-cert-dir', trust, '--src-creds', `${user}:${password}`, ref, `dir:${out}`]);
    assert.ok((await readFile(join(out, 'manifest.json'))).equals(img.manifestBytes), `${user}: the manifest comes back byte for byte`);
  }
  await sb.podman(['login', '--cert-dir', trust, '-u', 'apr1', '-p', users.apr1, berth.host]);
  await sb.podman(['pull', '--cert-dir', trust, '--quiet', `${berth.host}/tutorial/bcrypt:v1`]);
  await assert.rejects(sb.skopeo(['inspect', '--cert-dir', trust, '--creds', 'crypt:wrong', `docker://${berth.host}/tutorial/crypt:v1`]));
  const lines = berth.output().stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const user of Object.keys(users)) {
    assert.ok(lines.some((l) => l.msg === 'request completed' && l.user === user && l.status === 201), `${user} pushed (access line)`);
  }
});
