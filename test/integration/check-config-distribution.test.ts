// `berth check-config` on a Distribution config.yml (the built CLI as a process): the one warning line
// listing every key berth does not honour, exit 0; refused keys and REGISTRY_* problems exit 1 with
// Distribution key paths at their line:col. Needs `npm run build` first (npm test does it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/processes.js';

const run = runCli;

async function configFile(t: { after(fn: () => Promise<void>): void }, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-distcfg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yml');
  await writeFile(file, text);
  return file;
}

test('check-config on a config.yml: exit 0, "FILE: ok", and one warning line with every ignored key', async (t) => {
  const file = await configFile(t, [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    '  fields: { service: registry }',
    'storage:',
    '  filesystem: { rootdirectory: ./data }',
    '  tag: { concurrencylimit: 8 }',
    'http:',
    '  addr: 127.0.0.1:5000',
    '  secret: not-used',
    '  headers: { X-Content-Type-Options: [nosniff] }',
    '',
  ].join('\n'));
  const r = await run(['check-config', file], { REGISTRY_HTTP_RELATIVEURLS: 'true' });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, `${file}: ok\n`);
  assert.equal(r.stderr, `warning: ${file}: ignoring 2 Distribution settings berth does not honour: `
    + 'storage.tag (the tag lookup concurrency is not configurable); '
    + 'http.secret (upload state is kept on the server, not signed into client state)\n');
});

test('check-config on a config.yml: refused keys and bad values, with Distribution paths, exit 1', async (t) => {
  const file = await configFile(t, 'version: 0.1\nstorage:\n  azure: { bucket: b }\nauth:\n  silly: { realm: r }\nhttp:\n  addr: nowhere\n');
  const r = await run(['check-config', file], { REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE: '/le' });
  assert.equal(r.code, 1);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), [
    `${file}:3:3  storage.azure  storage driver "azure" is not supported yet (berth has filesystem, inmemory and s3)`,
    `${file}:5:3  auth.silly  auth type "silly" is not supported: berth implements htpasswd and token only, and refuses to start rather than serve without the access control this config asks for`,
    `${file}:7:9  http.addr  expected host:port like 127.0.0.1:5000, [::1]:5000 or :5000, found "nowhere" (missing :port)`,
    "env REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE  http.tls.letsencrypt  Let's Encrypt is not supported: give http.tls.certificate and http.tls.key",
  ]);
});

test('serve on a config.yml with a refused key does not start: exit 1, every problem on stderr', async (t) => {
  const file = await configFile(t, 'version: 0.1\nhttp:\n  addr: 127.0.0.1:0\nproxy:\n  remoteurl: https://registry-1.docker.io\n');
  const r = await run(['serve', '--config', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, `berth: invalid configuration\n${file}:5:3  proxy.remoteurl  pull-through cache (proxy.remoteurl) is not supported yet: berth would serve as an ordinary push registry instead\n`);
});
