// Issue 14, point 1: a wrong-password flood must not slow everyone. Against a real berth (htpasswd with
// bcrypt cost 10, filesystem storage), 24 connections from two addresses guess passwords (known and unknown
// users) while a logged-in user pulls, from the very address that sprays, and a new user logs in from
// another. The flood is shed (429 with Retry-After, nothing hashed) once its budgets are spent, at most half
// of libuv's threads ever run bcrypt checks (the rest stay free for storage), and every good request
// succeeds while the flood runs. A user's typos answer 429 for that user only, not for a neighbour at the
// same address; behind a trusted proxy, "address" is the forwarded client's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { threadpoolSize } from '../../src/auth/check-gate.js';
import { request, type HttpResponse } from '../support/http.js';
import { waitUntil, withDeadline } from '../support/wait.js';
import { authGet, basic, pushSmallImage, startAuthBerth } from './auth-support.js';

const SPRAYER = '127.0.0.3';     // guesses many user names (and shares its address with alice: a NAT)
const GUESSER = '127.0.0.4';     // guesses alice's password
const NEWCOMER = '127.0.0.2';    // bob, logging in for the first time during the flood

interface Flood { statuses: Map<number, number>; total: number; sample429?: HttpResponse; stop: boolean }

/** One flood connection: wrong passwords until told to stop (or the deadline passes). */
async function guess(url: string, from: string, user: (i: number) => string, flood: Flood, deadline: number): Promise<void> {
  for (let i = 0; !flood.stop && Date.now() < deadline; i++) {
    const r = await request(`${url}/v2/`, {
      headers: { authorization: basic(user(i), randomBytes(6).toString('hex')) }, localAddress: from, timeoutMs: 30_000,
    });
    flood.statuses.set(r.status, (flood.statuses.get(r.status) ?? 0) + 1);
    flood.total++;
    if (r.status === 429) flood.sample429 ??= r;
  }
}

test('a wrong-password flood is shed fast while a logged-in user pulls and a new user logs in', async (t) => {
  const users = { alice: 'alice-secret', bob: 'bob-secret' };
  const b = await startAuthBerth(t, users);
  const alice = basic('alice', users.alice);
  // alice pushes and logs in from the address that will spray (her credentials are now cached).
  const img = await pushSmallImage(b.url, alice, 'team/app', 'v1', SPRAYER);
  assert.equal((await authGet(b.url, img.manifest, alice, SPRAYER)).status, 200);

  const flood: Flood = { statuses: new Map(), total: 0, stop: false };
  const deadline = Date.now() + 60_000;
  const workers = [
    ...Array.from({ length: 16 }, (_, w) => guess(b.url, SPRAYER, (i) => (i % 3 === 0 ? 'alice' : `user-${w}-${i}`), flood, deadline)),
    ...Array.from({ length: 8 }, () => guess(b.url, GUESSER, () => 'alice', flood, deadline)),
  ];
  t.after(async () => { flood.stop = true; await Promise.allSettled(workers); });
  try {
    // The flood is on: its budgets are spent and it is being refused.
    await waitUntil('the flood to be refused with 429', () => (flood.statuses.get(429) ?? 0) >= 50,
      { timeoutMs: 30_000, detail: () => JSON.stringify([...flood.statuses]) });
    const floodAtStart = flood.total;

    // alice keeps pulling: every manifest and blob GET succeeds while the flood runs.
    const good: number[] = [];
    for (let i = 0; i < 20; i++) {
      good.push((await authGet(b.url, img.manifest, alice, SPRAYER)).status);
      good.push((await authGet(b.url, img.layer, alice, SPRAYER)).status);
    }
    assert.deepEqual(good, Array(40).fill(200), 'every request of the logged-in user succeeds');
    // bob's first login (uncached, a real bcrypt check) from another address gets through during the flood.
    assert.equal((await authGet(b.url, '/v2/', basic('bob', users.bob), NEWCOMER)).status, 200);
    assert.ok(flood.total - floodAtStart >= 50,
      `the flood kept running while the good requests were served (${flood.total - floodAtStart} guesses meanwhile)`);
    // The sprayer's address budget (30 failures) is spent only by guesses that were checked: the check gate turns
    // most of the flood away before any check (429 "busy", nothing counted), so how many were checked by now depends
    // on the machine's speed. The flood runs on until the address's slow-down has started (and been logged).
    await waitUntil('the sprayer\'s address budget to be spent (its log line)',
      () => b.cap.lines.some((l) => /repeated authentication failures from this address/.test(l.msg) && l.addr?.endsWith(SPRAYER)),
      { timeoutMs: 30_000, detail: () => JSON.stringify([...flood.statuses]) });
  } finally {
    flood.stop = true;
    await withDeadline(Promise.all(workers), 35_000, 'the flood connections to stop');
  }

  const s = Object.fromEntries(flood.statuses);
  t.diagnostic(`flood: ${JSON.stringify(s)}, total ${flood.total}; peak checks ${b.access.gate.peak}`);
  assert.deepEqual(Object.keys(s).map(Number).sort(), [401, 429], `the flood only gets 401 and 429: ${JSON.stringify(s)}`);
  // Shed, not hashed: once the budgets (5 per address and user, 30 per address in 60 s) are spent, at most
  // one guess per backoff interval is checked; the rest are refused at once.
  assert.ok(s[401] < flood.total / 4, `most guesses were refused without a check: ${JSON.stringify(s)} of ${flood.total}`);
  const r = flood.sample429!;
  assert.match(r.headers['retry-after'] ?? '', /^[1-9][0-9]*$/, 'a 429 says when to retry');
  assert.deepEqual(r.json(), { errors: [{ code: 'TOOMANYREQUESTS', message: 'too many requests' }] });
  assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
  // The bcrypt checks never took more than half of libuv's threads (2 of the default 4).
  const half = Math.max(1, Math.floor(threadpoolSize() / 2));
  assert.equal(b.access.gate.concurrency, half);
  assert.ok(b.access.gate.peak <= half, `at most ${half} password checks at once, saw ${b.access.gate.peak}`);
  assert.ok(b.cap.lines.some((l) => /repeated authentication failures from this address/.test(l.msg) && l.addr?.endsWith(SPRAYER)));
  assert.ok(b.cap.lines.every((l) => !JSON.stringify(l).includes(users.alice)), 'no password in the log');
});

test('one user\'s typos answer 429 for that user only: a neighbour behind the same address is not slowed', async (t) => {
  const users = { carol: 'carol-secret', dave: 'dave-secret' };
  const b = await startAuthBerth(t, users);
  const NAT = '127.0.0.5';
  for (let i = 0; i < 5; i++) {
    assert.equal((await authGet(b.url, '/v2/', basic('carol', 'typo' + i), NAT)).status, 401, `typo ${i}`);
  }
  const refused = await authGet(b.url, '/v2/', basic('carol', 'typo'), NAT);
  assert.equal(refused.status, 429, 'carol spent her budget');
  assert.equal(refused.headers['retry-after'], '1');
  // dave, same address, right password: checked and let in at once, without a 429 first.
  assert.equal((await authGet(b.url, '/v2/', basic('dave', users.dave), NAT)).status, 200);
  // carol is not locked out: after the backoff her right password works.
  const statuses: number[] = [];
  await waitUntil('carol to get in after her backoff', async () => {
    const r = await authGet(b.url, '/v2/', basic('carol', users.carol), NAT);
    statuses.push(r.status);
    return r.status === 200;
  }, { timeoutMs: 10_000, intervalMs: 100 });
  assert.ok(statuses.every((s) => s === 429 || s === 200), statuses.join());
});

test('behind a trusted proxy the budgets key by the forwarded client, not by the proxy\'s address', async (t) => {
  const users = { bob: 'bob-secret' };
  const PROXY = '127.0.0.9';
  const b = await startAuthBerth(t, users, { cost: 4, yaml: `proxy: { trustedproxies: ['${PROXY}'] }` });
  const via = (client: string, authorization: string) => request(`${b.url}/v2/`,
    { headers: { authorization, 'x-forwarded-for': client }, localAddress: PROXY, timeoutMs: 30_000 });
  // One client behind the proxy sprays user names until its address budget (30) is spent.
  const statuses: number[] = [];
  for (let i = 0; i < 40; i++) statuses.push((await via('10.0.0.1', basic(`nobody-${i}`, 'x'))).status);
  assert.deepEqual(statuses.slice(0, 30), Array(30).fill(401));
  assert.ok(statuses.slice(30).every((s) => s === 429), statuses.join());
  assert.equal((await via('10.0.0.1', basic('bob', users.bob))).status, 429, 'that client waits');
  // Another client of the same proxy is not affected.
  assert.equal((await via('10.0.0.2', basic('bob', users.bob))).status, 200);
  assert.ok(b.cap.lines.some((l) => /repeated authentication failures from this address/.test(l.msg) && l.addr === '10.0.0.1'));
});
