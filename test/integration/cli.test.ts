// The built CLI as a process: check-config exit codes and output, usage errors, and `serve`: the
// listening line, GET /v2/, the 404 for other paths, and SIGTERM draining a request in flight.
// Needs `npm run build` first (npm test does it); fails with that hint if dist/ is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { assertBuilt, BERTH_MAIN, REPO_ROOT, runCli } from '../support/processes.js';
import { request } from '../support/http.js';
import { makeTestCert } from '../support/tls-certs.js';
import { withDeadline } from '../support/wait.js';

const run = runCli;

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('check-config: a valid file → exit 0, "FILE: ok"', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'gateway.yml');
  await writeFile(file, 'listen: 127.0.0.1:5000\nregistry: { storage: { filesystem: { rootdirectory: ./data } } }\n');
  const r = await run(['check-config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${file}: ok\n`);
});

test('check-config: the shipped gateway.yml and docker/gateway.yml are valid', async () => {
  for (const f of ['gateway.yml', 'docker/gateway.yml']) {
    const r = await run(['check-config', f]);
    assert.equal(r.code, 0, `${f}: ${r.stdout}${r.stderr}`);
  }
});

test('check-config: every problem, one per line, exit 1', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'bad.yml');
  await writeFile(file, 'listen: 127.0.0.1:5000\nlisen: x\nlog: { level: loud }\n');
  const r = await run(['check-config', file]);
  assert.equal(r.code, 1);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), [
    `${file}:2:1  lisen  unknown key, expected one of: listen, tls, auth, headers, upstreams, clients, urls, proxy, registry, log`,
    `${file}:3:15  log.level  expected one of trace, debug, info, warn, error, fatal, silent, found string "loud"`,
  ]);
});

test('check-config: env overrides count', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'gateway.yml');
  await writeFile(file, '');
  const r = await run(['check-config', file], { REGISTRY_STORAGE_DELETE_ENABLED: 'perhaps' });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, 'env REGISTRY_STORAGE_DELETE_ENABLED  registry.storage.delete.enabled  expected true or false, found string "perhaps"\n');
});

test('usage: unknown command and two FILEs → exit 2 with usage; --help and --version → 0', async () => {
  for (const args of [['frobnicate'], [], ['check-config', 'a.yml', 'b.yml'], ['serve', 'a.yml', 'b.yml'], ['serve', '--config', 'a.yml', 'b.yml'], ['serve', '--nope'], ['a.txt']]) {
    const r = await run(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /Usage:\n {2}berth serve/);
  }
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /berth check-config \[FILE\]/);
  const v = await run(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('serve: an invalid config fails at start with every problem, exit 1', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'gateway.yml');
  await writeFile(file, 'listen: nowhere\nregistry: { storage: { filesystem: {}, inmemory: {} } }\n');
  const r = await run(['serve', '--config', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${file}:1:9  listen  expected host:port`));
  assert.match(r.stderr, new RegExp(`${file}:2:40  registry.storage  expected exactly one driver, found: filesystem, inmemory`));
});

test('registry:2 argument forms: `serve FILE` (Distribution\'s `registry serve FILE`) and a bare `FILE.yml` (the image entrypoint\'s) read FILE', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'config.yml');
  await writeFile(file, 'listen: nowhere\n');
  for (const args of [['serve', file], [file]]) {
    const r = await run(args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${file}:1:9  listen  expected host:port`), args.join(' '));
  }
});

/** A running `serve` whose stdout lines can be awaited (no polling; at most 20 s each, and its exit at most
 *  15 s). `asProgram`: run the bundle itself (its `#!` line), as the `berth` bin does, instead of `node main.js`. */
function serve(file: string, t: { after(fn: () => Promise<void> | void): void }, o: { asProgram?: boolean } = {}) {
  assertBuilt();
  const argv = ['serve', '--config', file];
  const child: ChildProcess = spawn(o.asProgram ? BERTH_MAIN : process.execPath, o.asProgram ? argv : [BERTH_MAIN, ...argv], {
    cwd: REPO_ROOT, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exitEvent = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = ''; let err = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = out.match(w.re);
      if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
    }
  };
  child.stdout!.setEncoding('utf8').on('data', (c: string) => { out += c; check(); });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { err += c; });
  const waitFor = (re: RegExp) => withDeadline(new Promise<RegExpMatchArray>((resolve, reject) => {
    waiters.push({ re, resolve });
    check();
    void exitEvent.then(([code, sig]) => reject(new Error(`berth exited (${code ?? sig}) before ${re}\n${out}\n${err}`)));
  }), 20_000, `berth's output to match ${re}`, () => `${out}\n${err}`);
  const exited = () => withDeadline(exitEvent, 15_000, 'berth to exit', () => `${out}\n${err}`);
  return { child, exited, waitFor, output: () => ({ out, err }) };
}

test('serve: listening line, /v2/, 404 elsewhere, SIGTERM drains an upload in flight and exits 0', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'gateway.yml');
  await writeFile(file, 'listen: 127.0.0.1:0\nregistry: { storage: { filesystem: { rootdirectory: store } } }\nlog: { level: debug }\n');
  const berth = serve(file, t);
  const [line, url] = await berth.waitFor(/listening on (http:\/\/127\.0\.0\.1:(\d+))\n/);
  assert.notEqual(url, 'http://127.0.0.1:0');
  assert.equal(berth.output().out.split('\n').filter((l) => l.includes('listening on ')).length, 1, line);

  const v2 = await request(`${url}/v2/`);
  assert.equal(v2.status, 200);
  assert.equal(v2.headers['docker-distribution-api-version'], 'registry/2.0');
  assert.match(String(v2.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  await berth.waitFor(/"msg":"request completed"/);

  const other = await request(`${url}/index.html`, { headers: { 'X-Request-Id': 'trace-1.2_3' } });
  assert.equal(other.status, 404);
  assert.equal(other.headers['x-request-id'], 'trace-1.2_3');
  assert.deepEqual(other.json(), { errors: [{ code: 'UNSUPPORTED', message: 'the requested path is not served by this registry' }] });

  // A blob upload whose body is still arriving when SIGTERM comes in.
  const start = await request(`${url}/v2/drain/test/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202, start.text());
  const location = new URL(String(start.headers.location), url).toString();
  // A raw request: its body is sent in two parts, with SIGTERM in between.
  const patch = httpRequest(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'X-Request-Id': 'slow-patch' } });
  const patchRes = withDeadline(new Promise<{ status: number; body: string }>((resolve, reject) => {
    patch.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c) => { body += c; }).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    patch.once('error', reject);
  }), 15_000, 'the response to the slow PATCH');
  patch.write('first half, ');
  patch.flushHeaders();
  await berth.waitFor(/"reqId":"slow-patch","method":"PATCH"[^\n]*"msg":"request started"/);
  berth.child.kill('SIGTERM');
  await berth.waitFor(/"msg":"shutting down"/);
  patch.end('second half');
  const done = await patchRes;
  assert.equal(done.status, 202, done.body);
  const [code, signal] = await berth.exited();
  assert.deepEqual({ code, signal }, { code: 0, signal: null });
  assert.match(berth.output().out, /"reqId":"slow-patch"[^\n]*"status":202[^\n]*"bytesIn":23[^\n]*"msg":"request completed"/);
  assert.ok((await readdir(join(dir, 'store'))).length > 0, 'relative rootdirectory resolved next to the config');
});

test('the bundle runs as a program, as the berth bin does: its #! line starts node on it; serve tunes V8\'s GC', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'gateway.yml');
  await writeFile(file, 'listen: 127.0.0.1:0\nregistry: { storage: { inmemory: {} } }\nlog: { level: debug }\n');
  const berth = serve(file, t, { asProgram: true });
  const [, url] = await berth.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)\n/);
  assert.equal((await request(`${url}/v2/`)).status, 200);
  const argv = (await readFile(`/proc/${berth.child.pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  assert.match(argv[0]!, /node/);
  assert.deepEqual(argv.slice(1, 3), [BERTH_MAIN, 'serve']);
  await berth.waitFor(/"gc":"minor GC per 16 MiB of request-body buffers during uploads","msg":"v8 gc tuning applied"/);
  berth.child.kill('SIGTERM');
  assert.deepEqual(await berth.exited(), [0, null]);
});

test('check-config loads the tls: pair as serve does: missing file, mismatched key, valid pair', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'gateway.yml');
  const a = await makeTestCert(), b = await makeTestCert();
  await writeFile(join(dir, 'a.crt'), a.cert); await writeFile(join(dir, 'a.key'), a.key); await writeFile(join(dir, 'b.key'), b.key);
  const conf = (crt: string, key: string) => writeFile(file, `listen: 127.0.0.1:5000\ntls: { certificate: ${crt}, key: ${key} }\nregistry: { storage: { inmemory: {} } }\n`);

  await conf('certs/domain.crt', 'certs/domain.key');
  let r = await run(['check-config', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, `${file}:2:21  tls.certificate  file not found: ${join(dir, 'certs/domain.crt')} (serve --dev-cert creates a development pair)\n`);
  await conf('missing.pem', 'a.key');
  r = await run(['check-config', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, `${file}:2:21  tls.certificate  file not found: ${join(dir, 'missing.pem')}\n`, 'no --dev-cert hint: it only makes DIR/domain.crt');
  await conf('a.crt', 'b.key');
  r = await run(['check-config', file]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, new RegExp(`^${file}:2:\\d+  tls.key  .*${join(dir, 'b.key')}`));
  await conf('a.crt', 'a.key');
  r = await run(['check-config', file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, `${file}: ok\n`);
});
