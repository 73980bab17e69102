// HtpasswdAccessController against files written by Apache's real `htpasswd`, over real HTTP.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { ChallengeError, TooManyAttemptsError } from '../../src/auth/access.js';
import { createAccessController, HtpasswdAccessController, type HtpasswdAccessOptions } from '../../src/auth/basic.js';
import { defaultVerifier, type HashKind, type PasswordVerifier } from '../../src/auth/htpasswd.js';
import { createLogger } from '../../src/log/logger.js';
import { request } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';

const execFileP = promisify(execFile);
/** Apache's htpasswd (or any tool), killed after 30 s. */
const run = (cmd: string, args: string[]) => execFileP(cmd, args, { timeout: 30_000 });

/** One `user:hash` line from the real tool (-n prints to stdout). */
async function htpasswdLine(flags: string, user: string, password: string): Promise<string> {
  const [letters, ...rest] = flags.split(' ');
  const { stdout } = await run('htpasswd', [`-nb${letters}`, ...rest, user, password]);
  return stdout.trim();
}

/** The real verifier, counting calls per kind (and the hashes it was asked about). */
function countingVerifier(): PasswordVerifier & { calls: { kind: HashKind; hash: string }[] } {
  const calls: { kind: HashKind; hash: string }[] = [];
  return { calls, verify: (kind, pw, hash) => { calls.push({ kind, hash }); return defaultVerifier.verify(kind, pw, hash); } };
}

interface Env {
  dir: string;
  file: string;
  url: string;
  ac: HtpasswdAccessController;
  verifier: ReturnType<typeof countingVerifier>;
  logs: () => string;
  clock: { t: number };
  /** GET with an optional Authorization value → status, challenge header, Retry-After, body text. */
  get(authorization?: string): Promise<{ status: number; challenge: string | null; retryAfter: string | null; body: string }>;
}

const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');

async function setup(t: TestContext, content: string, opts: Partial<HtpasswdAccessOptions> = {}): Promise<Env> {
  const tmp = await makeTempDir('berth-auth-');
  t.after(() => tmp.cleanup());
  const file = join(tmp.path, 'htpasswd');
  await writeFile(file, content);
  let logText = '';
  const log = createLogger({ level: 'debug', destination: new Writable({ write(c, _e, cb) { logText += c; cb(); } }) });
  const verifier = countingVerifier();
  const clock = { t: 1_000_000 };
  const ac = await HtpasswdAccessController.create({
    path: file, realm: 'Registry "Realm"', log, verifier, now: () => clock.t, ...opts,
  });
  t.after(() => ac.close());
  // What the gateway will do: authorize, then 200 with the user or 401 with the challenge.
  const server = createServer((req: IncomingMessage, res) => {
    ac.authorize(req, []).then(
      (g) => res.end(JSON.stringify(g)),
      (err) => {
        if (err instanceof TooManyAttemptsError) { res.writeHead(429, { 'retry-after': String(err.retryAfterSeconds) }).end(); return; }
        if (!(err instanceof ChallengeError)) { res.statusCode = 500; res.end(String(err)); return; }
        res.writeHead(401, { 'www-authenticate': err.wwwAuthenticate, 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: err.code, message: err.message }] }));
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as { port: number };
  const url = `http://127.0.0.1:${port}/v2/`;
  return {
    dir: tmp.path, file, url, ac, verifier, logs: () => logText, clock,
    async get(authorization) {
      const res = await request(url, { headers: authorization === undefined ? {} : { authorization } });
      return { status: res.status, challenge: res.headers['www-authenticate'] ?? null, retryAfter: res.headers['retry-after'] ?? null, body: res.text() };
    },
  };
}

test('files written by the real htpasswd verify: -c (apr1 default), -B, -m, -s, UTF-8 passwords', async (t) => {
  const tmp = await makeTempDir('berth-auth-c-');
  t.after(() => tmp.cleanup());
  const created = join(tmp.path, 'created');
  await run('htpasswd', ['-cb', created, 'plain', 'pw-plain']);        // what `htpasswd -c` writes
  const lines = [
    (await import('node:fs')).readFileSync(created, 'utf8').trim(),
    await htpasswdLine('B', 'bc', 'pw-bc'),
    await htpasswdLine('B -C 4', 'bc4', 'pw-bc4'),
    await htpasswdLine('m', 'md5', 'pw-md5'),
    await htpasswdLine('s', 'sha', 'pw-sha'),
    await htpasswdLine('B -C 4', 'üser', 'pässwörd'),
    await htpasswdLine('m', 'umd5', 'pässwörd'),
    await htpasswdLine('s', 'usha', 'pässwörd'),
  ];
  assert.match(lines[0], /^plain:\$apr1\$/);
  const env = await setup(t, '# made by htpasswd\n' + lines.join('\n') + '\n');
  for (const [user, pw] of [['plain', 'pw-plain'], ['bc', 'pw-bc'], ['bc4', 'pw-bc4'], ['md5', 'pw-md5'], ['sha', 'pw-sha'],
    ['üser', 'pässwörd'], ['umd5', 'pässwörd'], ['usha', 'pässwörd']]) {
    const r = await env.get(basic(user, pw));
    assert.equal(r.status, 200, `${user} should verify`);
    assert.deepEqual(JSON.parse(r.body), { user });
    const wrong = await env.get(basic(user, pw + 'x'));
    assert.equal(wrong.status, 401, `${user} with a wrong password`);
  }
  assert.deepEqual(new Set(env.verifier.calls.map((c) => c.kind)), new Set(['bcrypt', 'apr1', 'sha']));
});

test('401s: missing, wrong password, unknown user, garbage headers; challenge + OCI body; nothing secret logged', async (t) => {
  const env = await setup(t, (await htpasswdLine('B -C 4', 'alice', 'secret')) + '\n', { throttle: false });
  const expectChallenge = (r: { status: number; challenge: string | null; body: string }) => {
    assert.equal(r.status, 401);
    assert.equal(r.challenge, 'Basic realm="Registry \\"Realm\\""');
    assert.deepEqual(JSON.parse(r.body), { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
  };
  expectChallenge(await env.get());
  assert.equal(env.verifier.calls.length, 0, 'no header, no hashing');
  expectChallenge(await env.get(basic('alice', 'hunter2')));
  for (const h of ['Basic', 'Basic !!!', 'Basic ' + Buffer.from('nocolon').toString('base64'), 'Bearer x.y.z',
    'Basic ' + 'A'.repeat(10_000), 'Basic ' + Buffer.from([0xff, 0x3a, 0x41]).toString('base64')]) {
    expectChallenge(await env.get(h));
  }
  const before = env.verifier.calls.length;
  expectChallenge(await env.get(basic('mallory', 'hunter3')));
  assert.equal(env.verifier.calls.length, before + 1, 'unknown user still costs one compare');
  const dummy = env.verifier.calls.at(-1)!;
  assert.equal(dummy.kind, 'bcrypt');
  assert.match(dummy.hash, /^\$2y\$04\$/, 'dummy hash has the same cost as the table');

  // Direct call: the rejection is a ChallengeError carrying reason (and the user only when known).
  const req = { headers: { authorization: basic('alice', 'nope') }, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
  await assert.rejects(env.ac.authorize(req, []), (e: unknown) =>
    e instanceof ChallengeError && e.code === 'UNAUTHORIZED' && e.reason === 'invalid' && e.user === 'alice');
  const logs = env.logs();
  for (const secret of ['hunter2', 'hunter3', 'mallory', Buffer.from('alice:hunter2').toString('base64')]) {
    assert.ok(!logs.includes(secret), `log must not contain ${secret}`);
  }
});

test('a user removed from the file is refused on the very next call (atomic rename and in-place rewrite)', async (t) => {
  const alice = await htpasswdLine('B -C 4', 'alice', 'a-pw');
  const bob = await htpasswdLine('m', 'bob', 'b-pw');
  const carol = await htpasswdLine('s', 'carol', 'c-pw');
  const env = await setup(t, [alice, bob, carol].join('\n') + '\n');
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 200);
  assert.equal((await env.get(basic('bob', 'b-pw'))).status, 200);
  assert.equal((await env.get(basic('carol', 'c-pw'))).status, 200);

  // Atomic replace (new inode), immediately.
  await writeFile(env.file + '.tmp', [bob, carol].join('\n') + '\n');
  await rename(env.file + '.tmp', env.file);
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 401, 'alice is gone (even though cached)');
  assert.equal((await env.get(basic('bob', 'b-pw'))).status, 200);

  // In-place rewrite of the same size (same inode, possibly the same mtime tick): bob → dave.
  await writeFile(env.file, [bob.replace(/^bob:/, 'dan:'), carol].join('\n') + '\n');
  assert.equal((await env.get(basic('bob', 'b-pw'))).status, 401, 'bob is gone');
  assert.equal((await env.get(basic('dan', 'b-pw'))).status, 200);
  assert.match(env.logs(), /htpasswd reloaded/);
});

test('verified credentials are cached, flushed on reload, and cache:false verifies every time', async (t) => {
  const alice = await htpasswdLine('B -C 4', 'alice', 'a-pw');
  const env = await setup(t, alice + '\n');
  const h = basic('alice', 'a-pw');
  for (let i = 0; i < 5; i++) assert.equal((await env.get(h)).status, 200);
  assert.equal(env.verifier.calls.length, 1, 'one bcrypt for five requests');
  await writeFile(env.file, alice + '\n# a comment changes the file\n');
  assert.equal((await env.get(h)).status, 200);
  assert.equal(env.verifier.calls.length, 2, 'reload flushed the cache');
  env.clock.t += 60_001;
  assert.equal((await env.get(h)).status, 200);
  assert.equal(env.verifier.calls.length, 3, 'entry expired after the TTL');
  assert.equal((await env.get(basic('alice', 'wrong'))).status, 401);
  assert.equal((await env.get(basic('alice', 'wrong'))).status, 401);
  assert.equal(env.verifier.calls.length, 5, 'failures are never cached');

  const off = await setup(t, alice + '\n', { cache: false });
  for (let i = 0; i < 3; i++) assert.equal((await off.get(h)).status, 200);
  assert.equal(off.verifier.calls.length, 3);
});

test('wrong passwords: budget per address+user, then 429 with Retry-After and no hashing; other users unaffected; no lockout', async (t) => {
  const alice = await htpasswdLine('s', 'alice', 'a-pw');
  const bob = await htpasswdLine('s', 'bob', 'b-pw');
  const env = await setup(t, `${alice}\n${bob}\n`);
  for (let i = 0; i < 5; i++) assert.equal((await env.get(basic('alice', 'bad' + i))).status, 401);
  assert.equal(env.verifier.calls.length, 5, 'the first five failures are checked');
  // Budget spent: refused at once, not hashed, told when to come back (250 ms → rounded up to 1 s).
  const r = await env.get(basic('alice', 'a-pw'));
  assert.equal(r.status, 429);
  assert.equal(r.retryAfter, '1');
  assert.equal(env.verifier.calls.length, 5, '429 costs no check');
  assert.match(env.logs(), /repeated wrong passwords for this user from this address/);
  // Another user behind the same address is not slowed by alice's typos.
  assert.equal((await env.get(basic('bob', 'b-pw'))).status, 200);
  // The backoff doubles after each further failure (250, 500, 1000, 2000, 4000, 4000 ms).
  for (const ms of [250, 500, 1000, 2000, 4000, 4000]) {
    assert.equal((await env.get(basic('alice', 'bad'))).status, 429, `before ${ms} ms`);
    env.clock.t += ms;
    assert.equal((await env.get(basic('alice', 'bad'))).status, 401, `after ${ms} ms`);
  }
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 429);
  assert.equal((await env.get(basic('alice', 'a-pw'))).retryAfter, '4');
  // No lockout: after the backoff the right password works, and is cached (never throttled).
  env.clock.t += 4000;
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 200);
  const calls = env.verifier.calls.length;
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 200);
  assert.equal(env.verifier.calls.length, calls, 'served from the cache');
  // A success forgave alice's failures.
  for (let i = 0; i < 5; i++) assert.equal((await env.get(basic('alice', 'again' + i))).status, 401);
  assert.equal((await env.get(basic('alice', 'again'))).status, 429);
  // The window expires.
  env.clock.t += 60_000;
  assert.equal((await env.get(basic('alice', 'bad'))).status, 401);
});

test('spraying user names: the address budget (30) ends in 429, except for users who logged in from there', async (t) => {
  const alice = await htpasswdLine('s', 'alice', 'a-pw');
  const carol = await htpasswdLine('s', 'carol', 'c-pw');
  const env = await setup(t, `${alice}\n${carol}\n`, { cache: false });
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 200);
  for (let i = 0; i < 30; i++) assert.equal((await env.get(basic('nobody' + i, 'x'))).status, 401, `guess ${i}`);
  assert.match(env.logs(), /repeated authentication failures from this address/);
  const calls = env.verifier.calls.length;
  assert.equal((await env.get(basic('nobody-else', 'x'))).status, 429);
  assert.equal((await env.get('Basic !!!')).status, 429, 'malformed headers count against the address too');
  assert.equal((await env.get(basic('carol', 'c-pw'))).status, 429, 'a user new to this address waits too');
  assert.equal(env.verifier.calls.length, calls, 'nothing hashed');
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 200, 'alice logged in from here within the window');
  env.clock.t += 250;
  assert.equal((await env.get(basic('carol', 'c-pw'))).status, 200, 'after the backoff');
});

test('identical concurrent requests share one check; checks run at most `checks` at once', async (t) => {
  const alice = await htpasswdLine('B -C 4', 'alice', 'a-pw');
  let running = 0, peak = 0, calls = 0;
  const slow: PasswordVerifier = {
    async verify(kind, pw, hash) {
      calls++; running++; peak = Math.max(peak, running);
      try {
        await new Promise((r) => setTimeout(r, 20));
        return await defaultVerifier.verify(kind, pw, hash);
      } finally { running--; }
    },
  };
  const env = await setup(t, alice + '\n', { verifier: slow, checks: 2, throttle: false });
  const same = await Promise.all(Array.from({ length: 10 }, () => env.get(basic('alice', 'a-pw'))));
  assert.deepEqual(same.map((r) => r.status), Array(10).fill(200));
  assert.equal(calls, 1, 'ten identical requests, one check');
  const different = await Promise.all(Array.from({ length: 6 }, (_, i) => env.get(basic('alice', 'wrong' + i))));
  const statuses = different.map((r) => r.status);
  assert.ok(statuses.every((s) => s === 401 || s === 429), statuses.join());
  assert.ok(statuses.filter((s) => s === 401).length >= 4, `the address's share (4) is checked: ${statuses.join()}`);
  assert.ok(peak <= 2, `at most 2 checks at once, saw ${peak}`);
  assert.equal(env.ac.gate.active + env.ac.gate.queued, 0, 'every slot released');
});

test('startup skips every bad line with a file:line warning; a bad reload keeps valid users and refuses the bad ones; a deleted file fails closed', async (t) => {
  const alice = await htpasswdLine('B -C 4', 'alice', 'a-pw');
  const bob = await htpasswdLine('m', 'bob', 'b-pw');
  const tmp = await makeTempDir('berth-auth-bad-');
  t.after(() => tmp.cleanup());
  const log = createLogger({ level: 'silent' });
  const skipped = await setup(t, `${alice}\nbroken\n# ok\nbob:plaintext\n${bob}\n`);
  assert.equal((await skipped.get(basic('alice', 'a-pw'))).status, 200, 'one bad line never refuses the whole file');
  assert.equal((await skipped.get(basic('bob', 'plaintext'))).status, 401, 'the skipped line lets nobody in');
  assert.match(skipped.logs(), new RegExp(`"level":40.*${skipped.file}:2: malformed line: expected user:hash; line skipped`));
  assert.match(skipped.logs(), new RegExp(`"level":40.*${skipped.file}:4: unsupported hash`));
  assert.ok(!skipped.logs().includes('plaintext'));
  await assert.rejects(HtpasswdAccessController.create({ path: join(tmp.path, 'missing'), realm: 'r', log }), { code: 'ENOENT' });

  const env = await setup(t, `${alice}\n${bob}\n`);
  assert.equal((await env.get(basic('bob', 'b-pw'))).status, 200);
  await writeFile(env.file, `${alice}\nbob:$apr1$broken\n`);
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 200);
  assert.equal((await env.get(basic('bob', 'b-pw'))).status, 401, 'a user whose line broke is refused');
  assert.match(env.logs(), /"level":50.*"problems":\[\{"line":2,"message":"malformed apr1 hash \(user \\"bob\\"\)"\}\]/);

  // A deleted file fails closed (logged once, nothing hashed), even for cached credentials, until it is back.
  const calls = env.verifier.calls.length;
  await rm(env.file);
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 401);
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 401);
  assert.equal(env.verifier.calls.length, calls);
  assert.equal(env.logs().match(/htpasswd file unusable/g)?.length, 1);
  await writeFile(env.file, `${bob}\n`);
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 401);
  assert.equal((await env.get(basic('bob', 'b-pw'))).status, 200);
  assert.match(env.logs(), /htpasswd file is back/);
});

test('checkIntervalMs limits stats; concurrent requests share one check', async (t) => {
  const alice = await htpasswdLine('s', 'alice', 'a-pw');
  const bob = await htpasswdLine('s', 'bob', 'b-pw');
  const env = await setup(t, `${alice}\n${bob}\n`, { checkIntervalMs: 1000, cache: false });
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 200);
  await writeFile(env.file, `${bob}\n`);
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 200, 'not re-checked within the interval');
  env.clock.t += 1000;
  assert.equal((await env.get(basic('alice', 'a-pw'))).status, 401);
  const rs = await Promise.all(Array.from({ length: 20 }, () => env.get(basic('bob', 'b-pw'))));
  assert.ok(rs.every((r) => r.status === 200));
});

test('createAccessController: anonymous without auth config, htpasswd with it', async (t) => {
  const log = createLogger({ level: 'silent' });
  const req = { headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
  const anon = await createAccessController(undefined, log);
  assert.deepEqual(await anon.authorize(req, [{ type: 'repository', name: 'a/b', actions: ['push'] }]), { user: null });
  anon.close();
  const tmp = await makeTempDir('berth-auth-f-');
  t.after(() => tmp.cleanup());
  const file = join(tmp.path, 'htpasswd');
  await writeFile(file, (await htpasswdLine('s', 'alice', 'pw')) + '\n');
  const ac = await createAccessController({ htpasswd: { path: file, realm: 'R' } }, log);
  t.after(() => ac.close());
  await assert.rejects(ac.authorize(req, []), (e: unknown) => e instanceof ChallengeError && e.wwwAuthenticate === 'Basic realm="R"');
  const ok = { headers: { authorization: basic('alice', 'pw') }, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
  assert.deepEqual(await ac.authorize(ok, []), { user: 'alice' });
});
