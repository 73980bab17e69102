// Pure pieces of the notification envelope, table-driven: request.addr as Distribution's RemoteAddr,
// the request facts an event is built from, actor.name from the authenticated user, endpoint URL redaction (/debug/vars, errors, logs).
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { remoteAddr, requestFacts } from '../../src/registry/api/request-facts.js';
import { buildEvent } from '../../src/registry/notify/events.js';
import { redactURL } from '../../src/registry/notify/sinks/http.js';

/** The fields buildEvent/remoteAddr read from a request: headers and the peer. */
const req = (headers: Record<string, string>, peer = '10.0.0.9', port = 51234, method = 'PUT') =>
  ({ headers, method, socket: { remoteAddress: peer, remotePort: port } }) as unknown as IncomingMessage;

test('remoteAddr: first X-Forwarded-For entry, else X-Real-IP, when an IP; else the peer host:port', () => {
  const rows: [Record<string, string>, string, string][] = [
    [{}, '10.0.0.9', '10.0.0.9:51234'],
    [{ 'x-forwarded-for': '203.0.113.7' }, '10.0.0.9', '203.0.113.7'],
    [{ 'x-forwarded-for': ' 203.0.113.7 , 10.0.0.1' }, '10.0.0.9', '203.0.113.7'],
    [{ 'x-forwarded-for': '2001:db8::1, 10.0.0.1' }, '10.0.0.9', '2001:db8::1'],
    [{ 'x-forwarded-for': 'unknown', 'x-real-ip': '198.51.100.2' }, '10.0.0.9', '198.51.100.2'],
    [{ 'x-real-ip': '198.51.100.2' }, '10.0.0.9', '198.51.100.2'],
    [{ 'x-forwarded-for': 'not-an-ip', 'x-real-ip': 'nor-this' }, '10.0.0.9', '10.0.0.9:51234'],
    [{}, '::1', '[::1]:51234'],
  ];
  for (const [headers, peer, want] of rows) assert.equal(remoteAddr(req(headers, peer)), want, JSON.stringify({ headers, peer }));
});

test('buildEvent: request fields from the request facts; actor.name is the user; anonymous requests have an empty actor', () => {
  const source = { addr: 'host', instanceID: 'i' };
  const t = { repository: 'a/b', kind: 'blob' as const, digest: 'sha256:' + '0'.repeat(64), size: 1 };
  const facts = requestFacts(req({ host: 'reg.example:5000', 'user-agent': 'ua/1', 'x-request-id': 'rid-1' }));
  const named = buildEvent('push', t, { ...facts, user: 'alice' }, source, { includeReferences: false });
  assert.deepEqual(named.actor, { name: 'alice' });
  assert.deepEqual(named.request, { id: 'rid-1', addr: '10.0.0.9:51234', host: 'reg.example:5000', method: 'PUT', useragent: 'ua/1' });
  assert.equal(named.target.url, `http://reg.example:5000/v2/a/b/blobs/${t.digest}`);
  assert.deepEqual(buildEvent('push', t, facts, source, { includeReferences: false }).actor, {});
  const outside = buildEvent('delete', t, undefined, source, { includeReferences: false });   // no request (e.g. background work)
  assert.deepEqual([outside.request.addr, outside.request.host, outside.target.url, outside.actor], ['', '', undefined, {}]);
});

test('redactURL: a password in the userinfo becomes xxxxx; anything else is unchanged', () => {
  const rows: [string, string][] = [
    ['http://u:p%40ss@hooks.example:8080/in?x=1', 'http://u:xxxxx@hooks.example:8080/in?x=1'],
    ['https://hooks.example/in', 'https://hooks.example/in'],
    ['https://only-user@hooks.example/in', 'https://only-user@hooks.example/in'],
    ['not a url', 'not a url'],
  ];
  for (const [url, want] of rows) assert.equal(redactURL(url), want, url);
});
