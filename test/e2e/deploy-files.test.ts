// The deployment examples in docker/ are real and checked: docker-compose parses both compose files (berth alone
// with TLS + htpasswd, and berth as the sidecar in front of registry:2) and they say what matters (the healthcheck
// is `berth healthcheck`, data in a volume, config/certs/htpasswd mounted read-only, 443 published); the configs
// they mount pass `berth check-config` and are served for real by the built CLI (the container's paths and
// address swapped for temp ones through REGISTRY_* variables, as a user would override them), with the compose
// file's own healthcheck command; the systemd unit passes `systemd-analyze verify` and `security`; and the README's
// secure quick start (berth cert, berth htpasswd add, serve with two REGISTRY_* variables) works as written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { assertBuilt, BERTH_MAIN, REPO_ROOT, startDistribution } from '../support/processes.js';
import { request } from '../support/http.js';
import { needs, runCommand, startServing, type CommandResult } from '../support/command.js';
import { skipUnless } from '../support/clients.js';
import { waitUntil } from '../support/wait.js';

const DOCKER = join(REPO_ROOT, 'docker');
const PASSWORD = 'deploy-files-pw';
const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });

interface ComposeService {
  image?: string; build?: { context: string }; ports?: { published: number; target: number }[];
  environment?: Record<string, string>; volumes?: string[];
  healthcheck?: { test: string[] }; stop_grace_period?: string; depends_on?: Record<string, unknown>;
}

/** `docker-compose -f FILE config`: validates the file and prints it normalised (paths absolute, ports as objects). */
async function composeConfig(file: string): Promise<{ services: Record<string, ComposeService>; volumes?: Record<string, unknown> }> {
  const r = await runCommand('docker-compose', ['-f', file, 'config'], { cwd: DOCKER, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `docker-compose -f ${file} config\n${r.stderr}`);
  return parse(r.stdout);
}

/** A compose volume string SOURCE:TARGET:MODE as `config` prints it. */
function mounts(s: ComposeService): { source: string; target: string; mode: string }[] {
  return (s.volumes ?? []).map((v) => { const [source, target, mode] = v.split(':'); return { source: source!, target: target!, mode: mode ?? 'rw' }; });
}

const seconds = (d: string) => { const m = /^(\d+)s$/.exec(d); assert.ok(m, `a duration in seconds: ${d}`); return Number(m[1]); };

/** The berth service of a compose file: healthcheck, read-only mounts of the config and its certs/ and auth/, the
 *  config named by REGISTRY_CONFIGURATION_PATH, 443 → 5000, a stop grace period above the config's drain. */
async function assertBerthService(s: ComposeService, configName: string): Promise<void> {
  assert.deepEqual(s.healthcheck?.test, ['CMD', 'berth', 'healthcheck']);
  assert.equal(s.build?.context, REPO_ROOT, 'builds the image from the repository Dockerfile');
  assert.equal(s.image, 'berth:latest');
  assert.deepEqual(s.ports, [{ published: 443, target: 5000 }]);
  const m = mounts(s);
  const config = m.find((v) => v.source === join(DOCKER, configName));
  assert.ok(config, `${configName} is mounted: ${JSON.stringify(m)}`);
  assert.equal(config.mode, 'ro');
  assert.equal(s.environment?.REGISTRY_CONFIGURATION_PATH, config.target, 'serve and healthcheck read the mounted config');
  for (const dir of ['certs', 'auth']) {
    const v = m.find((x) => x.source === join(DOCKER, dir));
    assert.ok(v, `${dir}/ is mounted`);
    assert.equal(v.mode, 'ro', `${dir}/ is read-only`);
    assert.equal(v.target, join(config.target, '..', dir), `${dir}/ sits next to the config (its relative paths)`);
  }
  const yml = parse(await readFile(join(DOCKER, configName), 'utf8'));
  assert.equal(yml.listen, '0.0.0.0:5000', 'listens on the published target port, every interface');
  assert.deepEqual(yml.tls, { certificate: 'certs/domain.crt', key: 'certs/domain.key' });
  assert.equal(yml.auth.htpasswd.path, 'auth/htpasswd');
  assert.ok(seconds(s.stop_grace_period!) > seconds(yml.proxy.draintimeout), 'docker waits longer than berth drains');
}

/** A temp copy of docker/CONFIG with certs/ from `berth cert` and auth/htpasswd from `berth htpasswd add`. */
async function deployDir(t: { after(fn: () => Promise<void>): void }, configName: string): Promise<{ dir: string; config: string; ca: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-deploy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await cp(join(DOCKER, configName), join(dir, configName));
  assertOk(await cli(['cert', '--out', join(dir, 'certs')], { cwd: dir }));
  assertOk(await cli(['htpasswd', 'add', 'alice', '--file', join(dir, 'auth', 'htpasswd'), '--password-stdin'], { cwd: dir, input: `${PASSWORD}\n` }));
  return { dir, config: join(dir, configName), ca: await readFile(join(dir, 'certs', 'ca.crt'), 'utf8') };
}

/** The built CLI with exactly PATH plus `env` (no REGISTRY_* from the test's own environment). */
function cli(args: string[], o: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<CommandResult> {
  return runCommand(process.execPath, [BERTH_MAIN, ...args], { cwd: o.cwd, env: { PATH: process.env.PATH, ...o.env }, input: o.input, timeoutMs: 30_000 });
}
const assertOk = (r: CommandResult) => assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);

/** `berth healthcheck` as the compose file runs it: config from REGISTRY_CONFIGURATION_PATH, the real port by env. */
async function healthcheck(config: string, url: string, env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return cli(['healthcheck'], { cwd: tmpdir(), env: { REGISTRY_CONFIGURATION_PATH: config, REGISTRY_HTTP_ADDR: new URL(url).host, ...env } });
}

test('docker/compose.yml: berth alone (TLS + htpasswd) parses and mounts what it needs', { skip: needs('docker-compose', 'docker-compose') }, async () => {
  const c = await composeConfig('compose.yml');
  assert.deepEqual(Object.keys(c.services), ['registry'], 'one service, named as registry:2 setups name theirs');
  const s = c.services.registry!;
  await assertBerthService(s, 'berth.yml');
  const data = mounts(s).find((v) => v.target === '/var/lib/registry');
  assert.deepEqual(data, { source: 'registry-data', target: '/var/lib/registry', mode: 'rw' }, 'data in a named volume, writable');
  assert.ok(c.volumes && 'registry-data' in c.volumes);
  const yml = parse(await readFile(join(DOCKER, 'berth.yml'), 'utf8'));
  assert.equal(yml.registry.storage.filesystem.rootdirectory, '/var/lib/registry', 'storage in the volume');
});

test('docker/compose.sidecar.yml: berth in front of registry:2, which is not published', { skip: needs('docker-compose', 'docker-compose') }, async () => {
  const c = await composeConfig('compose.sidecar.yml');
  assert.deepEqual(Object.keys(c.services).sort(), ['berth', 'registry']);
  const reg = c.services.registry!;
  assert.equal(reg.image, 'registry:2');
  assert.equal(reg.ports, undefined, 'registry:2 is reachable only through berth');
  assert.deepEqual(mounts(reg), [{ source: 'registry-data', target: '/var/lib/registry', mode: 'rw' }]);
  const berth = c.services.berth!;
  await assertBerthService(berth, 'sidecar.yml');
  assert.ok(berth.depends_on && 'registry' in berth.depends_on);
  const yml = parse(await readFile(join(DOCKER, 'sidecar.yml'), 'utf8'));
  assert.equal(yml.upstreams.v2, 'http://registry:5000', 'the registry service by its compose name and port');
  assert.equal(yml.registry.storage, undefined, 'no storage of its own in sidecar mode');
  assert.equal(yml.registry.health.http[0].uri, 'http://registry:5000/v2/', 'registry:2 health is berth\'s health');
});

test('docker/berth.yml: check-config ok; served for real over TLS with htpasswd; the compose healthcheck passes; SIGHUP reloads the certificate; SIGTERM exits 0', async (t) => {
  assertBuilt();
  const d = await deployDir(t, 'berth.yml');
  // The container's paths swapped for temp ones, as an operator would override them.
  const env = { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(d.dir, 'data') };
  const checked = await cli(['check-config', d.config], { cwd: d.dir, env });
  assert.equal(checked.code, 0, checked.stdout + checked.stderr);
  assert.equal(checked.stdout, `${d.config}: ok\n`);
  assert.equal(checked.stderr, '', 'no warnings');

  const server = await startServing(process.execPath, [BERTH_MAIN, 'serve'], {
    cwd: d.dir, env: { PATH: process.env.PATH, REGISTRY_CONFIGURATION_PATH: d.config, REGISTRY_HTTP_ADDR: '127.0.0.1:0', ...env }, after: (fn) => t.after(fn),
  });
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await request(`${server.url}/v2/`, { ca: d.ca, servername: 'localhost', fresh: true })).status, 401);
  const ok = await request(`${server.url}/v2/`, { ca: d.ca, servername: 'localhost', headers: basic('alice', PASSWORD), fresh: true });
  assert.equal(ok.status, 200);
  const hc = await healthcheck(d.config, server.url, env);
  assert.equal(hc.code, 0, `berth healthcheck: ${hc.stdout}${hc.stderr}`);

  process.kill(server.pid, 'SIGHUP');   // what the unit's ExecReload sends
  await waitForLog(server, /reloading: tls certificate and key/);
  assert.equal((await request(`${server.url}/v2/`, { ca: d.ca, servername: 'localhost', headers: basic('alice', PASSWORD), fresh: true })).status, 200);
  assert.equal(await server.stop(), 0, server.output());
});

test('docker/sidecar.yml: check-config ok; berth in front of a real Distribution (docker-registry): auth, pushes land in its storage',
  { skip: skipUnless('docker-registry') }, async (t) => {
    assertBuilt();
    const upstream = await startDistribution();
    t.after(() => upstream.close());
    const d = await deployDir(t, 'sidecar.yml');
    // The compose service name swapped for the real address; the health check's interval shortened (10s).
    const env = { REGISTRY_BERTH_UPSTREAMS_V2: upstream.url, REGISTRY_HEALTH_HTTP_0_URI: `${upstream.url}/v2/`, REGISTRY_HEALTH_HTTP_0_INTERVAL: '200ms' };
    const checked = await cli(['check-config', d.config], { cwd: d.dir, env });
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);

    const server = await startServing(process.execPath, [BERTH_MAIN, 'serve'], {
      cwd: d.dir, env: { PATH: process.env.PATH, REGISTRY_CONFIGURATION_PATH: d.config, REGISTRY_HTTP_ADDR: '127.0.0.1:0', ...env }, after: (fn) => t.after(fn),
    });
    const tls = { ca: d.ca, servername: 'localhost', fresh: true };
    assert.equal((await request(`${server.url}/v2/`, tls)).status, 401, 'berth asks for credentials; registry:2 has none');
    const auth = basic('alice', PASSWORD);
    const base = await request(`${server.url}/v2/`, { ...tls, headers: auth });
    assert.equal(base.status, 200);
    assert.deepEqual(base.headerValues('docker-distribution-api-version'), ['registry/2.0']);

    const blob = Buffer.from('pushed through the sidecar\n');
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    // Distribution 2.8 has no monolithic POST: start a session, then PUT the bytes with the digest.
    const started = await request(`${server.url}/v2/deploy/sidecar/blobs/uploads/`, { ...tls, method: 'POST', headers: { ...auth, 'content-length': 0 } });
    assert.equal(started.status, 202, started.text());
    const location = new URL(started.headers.location!, server.url);
    assert.equal(location.origin, server.url, 'Distribution points the client back at berth (Host and X-Forwarded-Proto passed on)');
    location.searchParams.set('digest', digest);
    const pushed = await request(location, {
      ...tls, method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': blob.length }, body: blob,
    });
    assert.equal(pushed.status, 201, pushed.text());
    const direct = await request(`${upstream.url}/v2/deploy/sidecar/blobs/${digest}`, { method: 'HEAD', fresh: true });
    assert.equal(direct.status, 200, 'the blob is in registry:2\'s own storage');
    const hc = await healthcheck(d.config, server.url, env);
    assert.equal(hc.code, 0, `berth healthcheck: ${hc.stdout}${hc.stderr}`);

    // registry:2 gone: after two failed checks /v2 answers 503 and the compose healthcheck fails.
    await upstream.stop();
    const down = await waitUntil('berth healthcheck to fail with registry:2 down', async () => {
      const r = await healthcheck(d.config, server.url, env);
      return r.code === 1 && r;
    }, { intervalMs: 200, timeoutMs: 30_000, detail: () => server.output().slice(-2000) });
    assert.match(down.stderr, /answered 503 UNAVAILABLE \(failing health checks: http_0\)/);
    assert.equal(await server.stop(), 0, server.output());
  });

test('docker/berth.service: systemd-analyze verify and security pass; hardening, reload and stop timeout as documented', { skip: needs('systemd-analyze', 'systemd') }, async (t) => {
  const unit = await readFile(join(DOCKER, 'berth.service'), 'utf8');
  const directives = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string) => { const v = directives.get(k); assert.equal(v?.length, 1, `${k}= once: ${v}`); return v![0]!; };
  assert.equal(one('User'), 'berth');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('ProtectHome'), 'yes');
  assert.equal(one('PrivateTmp'), 'yes');
  assert.equal(one('CapabilityBoundingSet'), '', 'no capability at all');
  assert.equal(one('AmbientCapabilities'), '');
  assert.match(unit, /^#CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m, 'says how to allow port 443');
  assert.match(unit, /^#AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.match(unit, /SIGHUP, which reloads the TLS certificate and key/);
  assert.equal(one('Restart'), 'on-failure');
  assert.deepEqual(directives.get('Environment'), ['NODE_ENV=production', 'NODE_OPTIONS=--max-semi-space-size=16'], 'the launch flag of README "Performance"');
  assert.equal(one('ExecStart'), '/usr/local/bin/berth serve --config /etc/berth/berth.yml');
  assert.equal(one('ExecStartPre'), '/usr/local/bin/berth check-config /etc/berth/berth.yml');
  const yml = parse(await readFile(join(DOCKER, 'berth.yml'), 'utf8'));
  assert.equal(one('ReadWritePaths'), yml.registry.storage.filesystem.rootdirectory, 'the storage root is the one writable path');
  assert.ok(seconds(one('TimeoutStopSec')) > seconds(yml.proxy.draintimeout), 'systemd waits longer than berth drains');

  // verify needs the ExecStart binary to exist: a copy of the unit runs the built CLI with this node instead.
  const dir = await mkdtemp(join(tmpdir(), 'berth-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const copy = join(dir, 'berth.service');
  await writeFile(copy, unit.replaceAll('/usr/local/bin/berth', `${process.execPath} ${BERTH_MAIN}`));
  const verified = await runCommand('systemd-analyze', ['verify', copy], { timeoutMs: 60_000 });
  assert.equal(verified.code, 0, verified.stderr);
  assert.equal(verified.stderr.trim(), '', 'no warnings');
  const security = await runCommand('systemd-analyze', ['security', '--offline=true', '--threshold=20', copy], { timeoutMs: 60_000 });
  assert.equal(security.code, 0, `exposure above 2.0 (threshold 20 of 100):\n${security.stdout}${security.stderr}`);
  assert.match(security.stdout, /Overall exposure level for berth\.service: 1\.\d OK/);
});

test('README secure quick start: berth cert, berth htpasswd add, serve with REGISTRY_HTTP_TLS_CERTIFICATE and REGISTRY_AUTH', async (t) => {
  assertBuilt();
  const dir = await mkdtemp(join(tmpdir(), 'berth-quickstart-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await cp(join(REPO_ROOT, 'gateway.yml'), join(dir, 'gateway.yml'));   // the checkout's own, as `npm start` reads it
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  const commands = [
    'npm run berth -- cert --hostname registry.example.com',
    'npm run berth -- htpasswd add alice --file auth/htpasswd',
    'REGISTRY_HTTP_TLS_CERTIFICATE=certs/domain.crt REGISTRY_AUTH=htpasswd npm start',
  ];
  for (const c of commands) assert.ok(readme.includes(c), `the README says: ${c}`);
  assertOk(await cli(['cert', '--hostname', 'registry.example.com'], { cwd: dir }));
  assertOk(await cli(['htpasswd', 'add', 'alice', '--file', 'auth/htpasswd', '--password-stdin'], { cwd: dir, input: `${PASSWORD}\n` }));
  // npm start is `node --max-semi-space-size=16 dist/bundle/main.js serve --config gateway.yml`; the port is the one
  // change (any free one).
  const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.start, 'node --max-semi-space-size=16 dist/bundle/main.js serve --config gateway.yml');
  const server = await startServing(process.execPath, ['--max-semi-space-size=16', BERTH_MAIN, 'serve', '--config', 'gateway.yml'], {
    cwd: dir, env: { PATH: process.env.PATH, REGISTRY_HTTP_TLS_CERTIFICATE: 'certs/domain.crt', REGISTRY_AUTH: 'htpasswd', REGISTRY_HTTP_ADDR: '127.0.0.1:0' },
    after: (fn) => t.after(fn),
  });
  const ca = await readFile(join(dir, 'certs', 'ca.crt'), 'utf8');
  assert.equal((await request(`${server.url}/v2/`, { ca, servername: 'localhost', fresh: true })).status, 401);
  assert.equal((await request(`${server.url}/v2/`, { ca, servername: 'localhost', headers: basic('alice', PASSWORD), fresh: true })).status, 200);
  assert.equal(await server.stop(), 0, server.output());
});

async function waitForLog(server: { output(): string }, re: RegExp): Promise<void> {
  await waitUntil(`log line ${re}`, () => re.test(server.output()), { detail: () => server.output().slice(-2000) });
}
