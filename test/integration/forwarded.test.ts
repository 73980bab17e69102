import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  applyForwardedHeaders, compileTrustedProxies, ForwardedConfigError, isTrusted, normalizeIp, type ForwardedOptions,
} from '../../src/gateway/forwarded.js';
import { request } from '../support/http.js';

test('normalizeIp unwraps IPv4-mapped IPv6, brackets and zones', () => {
  assert.equal(normalizeIp('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(normalizeIp('::FFFF:127.0.0.1'), '127.0.0.1');
  assert.equal(normalizeIp('[::1]'), '::1');
  assert.equal(normalizeIp('fe80::1%eth0'), 'fe80::1');
  assert.equal(normalizeIp(' 192.168.0.1 '), '192.168.0.1');
  assert.equal(normalizeIp('unknown'), 'unknown');
});

test('compileTrustedProxies: CIDRs and single addresses, both families', () => {
  const list = compileTrustedProxies(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1', '::ffff:172.16.0.0/12']);
  const table: Array<[string | undefined, boolean]> = [
    ['10.200.3.4', true], ['::ffff:10.200.3.4', true], ['11.0.0.1', false],
    ['192.168.1.7', true], ['192.168.1.8', false],
    ['fd12:3456::1', true], ['fe80::1', false], ['::1', true], ['[::1]', true],
    ['172.20.0.1', true], ['172.32.0.1', false],
    ['127.0.0.1', false], ['not-an-ip', false], ['', false], [undefined, false],
  ];
  for (const [addr, want] of table) assert.equal(isTrusted(addr, list), want, String(addr));
  assert.equal(isTrusted('0.0.0.1', compileTrustedProxies(['0.0.0.0/0'])), true);
  assert.equal(isTrusted('10.0.0.1', compileTrustedProxies([])), false);
});

test('compileTrustedProxies rejects bad entries with BERTH_FORWARDED_CIDR', () => {
  for (const bad of ['10.0.0.0/33', '::/129', 'example.com', '10.0.0.0/8/1', '10.0.0/8', '1.2.3.4/-1', '1.2.3.4/', '']) {
    assert.throws(() => compileTrustedProxies([bad]), (e: unknown) =>
      e instanceof ForwardedConfigError && e.code === 'BERTH_FORWARDED_CIDR' && e.value === bad, bad);
  }
});

/** A real server on `host` that applies the headers and echoes what it would forward. */
async function echo(t: { after(fn: () => unknown): void }, host: string, opts: ForwardedOptions) {
  const server = http.createServer((req, res) => {
    const { clientIp } = applyForwardedHeaders(req, opts);
    const pick = (k: string) => req.headers[k] ?? null;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({
      clientIp, xff: pick('x-forwarded-for'), proto: pick('x-forwarded-proto'), realIp: pick('x-real-ip'),
      host: pick('x-forwarded-host'), port: pick('x-forwarded-port'), forwarded: pick('forwarded'),
    }));
  });
  server.listen(0, host);
  await once(server, 'listening');
  t.after(() => new Promise((r) => server.close(r)));
  const port = (server.address() as AddressInfo).port;
  return async (connectTo: string, headers: Record<string, string> = {}): Promise<Record<string, unknown>> =>
    (await request(`http://${connectTo.includes(':') ? `[${connectTo}]` : connectTo}:${port}/`, { headers, fresh: true })).json();
}

const SPOOF = {
  'X-Forwarded-For': '1.2.3.4', 'X-Forwarded-Proto': 'https', 'X-Real-IP': '1.2.3.4',
  'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Port': '443', Forwarded: 'for=1.2.3.4;proto=https',
};

test('untrusted peer: incoming forwarding headers are replaced by the peer and our scheme', async (t) => {
  const get = await echo(t, '127.0.0.1', { trustedProxies: ['10.0.0.0/8'], proto: 'http' });
  assert.deepEqual(await get('127.0.0.1', SPOOF), {
    clientIp: '127.0.0.1', xff: '127.0.0.1', proto: 'http', realIp: '127.0.0.1', host: null, port: null, forwarded: null,
  });
  assert.deepEqual(await get('127.0.0.1'), {
    clientIp: '127.0.0.1', xff: '127.0.0.1', proto: 'http', realIp: '127.0.0.1', host: null, port: null, forwarded: null,
  });
});

test('trusted peer: its headers are kept and the peer is appended', async (t) => {
  const get = await echo(t, '127.0.0.1', { trustedProxies: ['127.0.0.0/8'], proto: 'http' });
  assert.deepEqual(await get('127.0.0.1', SPOOF), {
    clientIp: '1.2.3.4', xff: '1.2.3.4, 127.0.0.1', proto: 'https', realIp: '1.2.3.4',
    host: 'evil.example', port: '443', forwarded: 'for=1.2.3.4;proto=https',
  });
  // nothing forwarded: the peer itself is the client; proto filled in
  assert.deepEqual(await get('127.0.0.1'), {
    clientIp: '127.0.0.1', xff: '127.0.0.1', proto: 'http', realIp: '127.0.0.1', host: null, port: null, forwarded: null,
  });
  // a chain through two trusted proxies: the client is the rightmost untrusted entry
  const r = await get('127.0.0.1', { 'X-Forwarded-For': '203.0.113.9, 198.51.100.1, 127.0.0.5' });
  assert.equal(r.clientIp, '198.51.100.1');
  assert.equal(r.xff, '203.0.113.9, 198.51.100.1, 127.0.0.5, 127.0.0.1');
  assert.equal(r.realIp, '198.51.100.1');
});

test('IPv4 client on a dual-stack socket (::ffff:127.0.0.1) matches an IPv4 CIDR and is logged as IPv4', async (t) => {
  const trusted = await echo(t, '::', { trustedProxies: ['127.0.0.1/32'], proto: 'https' });
  const r = await trusted('127.0.0.1', { 'X-Forwarded-For': '192.0.2.1' });
  assert.deepEqual([r.clientIp, r.xff, r.proto], ['192.0.2.1', '192.0.2.1, 127.0.0.1', 'https']);
  const untrusted = await echo(t, '::', { trustedProxies: ['::1'], proto: 'https' });
  const u = await untrusted('127.0.0.1', { 'X-Forwarded-For': '192.0.2.1' });
  assert.deepEqual([u.clientIp, u.xff, u.proto], ['127.0.0.1', '127.0.0.1', 'https']);
  const v6 = await untrusted('::1', { 'X-Forwarded-For': '192.0.2.1' });
  assert.deepEqual([v6.clientIp, v6.xff], ['192.0.2.1', '192.0.2.1, ::1']);
});
