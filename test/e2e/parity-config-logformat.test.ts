// Distribution's log and drain settings honoured by a real berth started from the built CLI on a config.yml
// (issue 15 point 12): log.formatter (logstash, text), log.fields, log.accesslog.disabled, http.draintimeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { startBerth } from '../support/processes.js';
import { request } from '../support/http.js';
import { waitUntil, withDeadline } from '../support/wait.js';

const configYml = (log: string[], http: string[] = []) => [
  'version: 0.1',
  'log:', ...log.map((l) => `  ${l}`),
  'storage:', '  filesystem:', '    rootdirectory: ROOT',
  'http:', '  addr: 127.0.0.1:0', ...http.map((l) => `  ${l}`),
  '',
].join('\n');

test('log.formatter: logstash, with log.fields on every line', async (t) => {
  const b = await startBerth({ configYaml: configYml(['level: info', 'formatter: logstash', 'fields: { service: registry, environment: test }']) });
  t.after(() => b.close());
  assert.equal((await request(`${b.url}/v2/`, { headers: { 'X-Request-Id': 'ls-1' } })).status, 200);
  const line = await waitUntil('the logstash access line', () => b.output().stdout.split('\n')
    .filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((l) => l.reqId === 'ls-1'), { timeoutMs: 10_000 });
  assert.equal(line.message, 'request completed');
  assert.equal(line.level, 'info');
  assert.equal(line['@version'], '1');
  assert.match(line['@timestamp'], /^\d{4}-\d\d-\d\dT/);
  assert.equal(line.service, 'registry');
  assert.equal(line.environment, 'test');
});

test('log.formatter: text (logfmt); log.accesslog.disabled drops the request lines only', async (t) => {
  const b = await startBerth({ configYaml: configYml(['level: info', 'formatter: text', 'accesslog: { disabled: true }']) });
  t.after(() => b.close());
  assert.equal((await request(`${b.url}/v2/`)).status, 200);
  const listening = await waitUntil('the text start line', () => b.output().stdout.split('\n').find((l) => /msg=listening/.test(l)), { timeoutMs: 10_000 });
  assert.match(listening, /^time=\S+ level=info msg=listening .*url=http:\/\/127\.0\.0\.1:\d+/);
  await b.stop();
  assert.doesNotMatch(b.output().stdout, /request completed/);
  assert.match(b.output().stdout, /msg=closed/);
});

test('http.draintimeout: SIGTERM cuts a stalled request after that long, not 10 s', async (t) => {
  const b = await startBerth({ configYaml: configYml(['level: info'], ['draintimeout: 500ms']) });
  t.after(() => b.close());
  // A request whose body never finishes: in flight until the drain timeout closes it.
  const port = Number(new URL(b.url).port);
  const s = connect(port, '127.0.0.1');
  s.on('error', () => undefined).resume();
  s.write(`POST /v2/a/blobs/uploads/?digest=sha256:${'0'.repeat(64)} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc`);
  await new Promise((r) => setTimeout(r, 200));   // the head reaches the server (the drain line below proves it was in flight)
  const started = Date.now();
  const exit = await withDeadline(b.stop('SIGTERM', 9_000), 9_500, 'berth to exit');
  assert.equal(exit.code, 0);
  assert.ok(Date.now() - started < 5_000, `exited after ${Date.now() - started} ms`);
  assert.match(b.output().stdout, /"drainMs":500/);
  assert.match(b.output().stdout, /"inFlight":1,"msg":"drain timeout: closing remaining connections"/);
  s.destroy();
});

test('http.prefix and http.host: /v2 served under the prefix, Location absolute with the prefix', async (t) => {
  const b = await startBerth({ configYaml: configYml(['level: info'], ['prefix: /registry/', 'host: "https://reg.example:5000"']) });
  t.after(() => b.close());
  assert.equal((await request(`${b.url}/registry/v2/`)).status, 200);
  const blob = Buffer.from('prefixed');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const put = await request(`${b.url}/registry/v2/team/app/blobs/uploads/?digest=${digest}`, {
    method: 'POST', body: blob, headers: { 'Content-Type': 'application/octet-stream' },
  });
  assert.equal(put.status, 201);
  assert.equal(put.headers.location, `https://reg.example:5000/registry/v2/team/app/blobs/${digest}`);
  const start = await request(`${b.url}/registry/v2/team/app/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  assert.match(start.headers.location!, /^https:\/\/reg\.example:5000\/registry\/v2\/team\/app\/blobs\/uploads\/[^/]+$/);
  const got = await request(`${b.url}/registry/v2/team/app/blobs/${digest}`);
  assert.equal(got.text(), 'prefixed');
  // Outside the prefix: 404, as Distribution's prefixed router answers; `/` (the load balancers' probe) stays 200.
  const outside = await request(`${b.url}/v2/team/app/blobs/${digest}`);
  assert.equal(outside.status, 404);
  assert.equal(outside.json().errors[0].code, 'UNSUPPORTED');
  assert.equal((await request(`${b.url}/v2/`)).status, 404);
  assert.equal((await request(`${b.url}/`)).status, 200);
});

test('http.relativeurls unset and no http.host: Location absolute from the request\'s scheme and Host, as Distribution', async (t) => {
  const b = await startBerth({ configYaml: configYml(['level: info'], []) });
  t.after(() => b.close());
  const start = await request(`${b.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  assert.match(start.headers.location!, new RegExp(`^${b.url.replace(/[.]/g, '\\.')}/v2/team/app/blobs/uploads/[^/]+$`));
});
