// Config discovery end to end (issue 16 point 5), the built CLI as a process (`npm run build` first): with no
// --config, serve, check-config, healthcheck and gc read $REGISTRY_CONFIGURATION_PATH; serve's log says which file
// and why; the variable is not taken for a config key (no "ignoring environment variable" warning). The /etc
// default and the order are table-tested in test/unit/config-path.test.ts (no test writes to /etc).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startBerth } from '../support/processes.js';
import { makeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

test('serve without --config reads REGISTRY_CONFIGURATION_PATH and logs why; healthcheck and gc find it too', async (t) => {
  const srv = await startBerth({ configFrom: 'env' });
  t.after(() => srv.close());
  const line = await waitUntil('the configuration read log line', () => srv.output().stdout.split('\n')
    .map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } })
    .find((l) => l?.msg === 'configuration read'));
  assert.equal(line.from, 'from REGISTRY_CONFIGURATION_PATH');
  assert.match(String(line.config), /berth-conf-[^/]+\/gateway\.yml$/);
  assert.doesNotMatch(srv.output().stdout + srv.output().stderr, /ignoring environment variable REGISTRY_CONFIGURATION_PATH/);
  const file = String(line.config);

  const env = { REGISTRY_CONFIGURATION_PATH: file, REGISTRY_HTTP_ADDR: srv.host };
  const hc = await runCli(['healthcheck'], env);
  assert.deepEqual(hc, { code: 0, stdout: `healthy: ${srv.url}/v2/ answered 200\n`, stderr: '' });
  const gc = await runCli(['gc', '--dry-run'], env);
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /^gc \(dry run\): 0 repositories/m);
  assert.match(gc.stderr, /warning: a registry is writing to this storage/);   // the lease of the server above: same storage
});

test('check-config without FILE: REGISTRY_CONFIGURATION_PATH, ok or missing; healthcheck --help', async (t) => {
  const dir = await makeTempDir('berth-discovery-');
  t.after(() => dir.cleanup());
  const file = join(dir.path, 'config.yml');
  await writeFile(file, `version: 0.1\nhttp: { addr: "127.0.0.1:5000" }\nstorage: { filesystem: { rootdirectory: ${join(dir.path, 'data')} } }\n`);
  const ok = await runCli(['check-config'], { REGISTRY_CONFIGURATION_PATH: file });
  assert.deepEqual(ok, { code: 0, stdout: `${file}: ok\n`, stderr: '' });
  const missing = await runCli(['check-config'], { REGISTRY_CONFIGURATION_PATH: join(dir.path, 'nope.yml') });
  assert.equal(missing.code, 1);
  assert.match(missing.stdout, /nope\.yml.*cannot read config: file not found/);
  const serve = await runCli(['serve'], { REGISTRY_CONFIGURATION_PATH: join(dir.path, 'nope.yml') });
  assert.equal(serve.code, 1);
  assert.match(serve.stderr, /^berth: invalid configuration\n.*nope\.yml.*file not found\n\(config file .*nope\.yml: from REGISTRY_CONFIGURATION_PATH\)\n$/);
  // A FILE argument wins over the variable.
  const arg = await runCli(['check-config', file], { REGISTRY_CONFIGURATION_PATH: join(dir.path, 'nope.yml') });
  assert.equal(arg.code, 0, arg.stdout);
  const help = await runCli(['healthcheck', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: berth healthcheck \[--config FILE\]/);
});

test('check-config with nothing named: /etc/docker/registry/config.yml when this host has one, else ./gateway.yml', async () => {
  const etc = '/etc/docker/registry/config.yml';
  const r = await runCli(['check-config']);   // cwd: the repository, whose gateway.yml is valid
  if (existsSync(etc)) {
    // Debian's docker-registry sample: whatever it says, it is that file that was read.
    assert.match(r.stdout + r.stderr, /\/etc\/docker\/registry\/config\.yml/);
    assert.doesNotMatch(r.stdout, /^gateway\.yml: ok$/m);
  } else {
    assert.deepEqual(r, { code: 0, stdout: 'gateway.yml: ok\n', stderr: '' });
  }
});
