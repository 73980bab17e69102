// Issue 14, point 5: health details must not leak. A berth with htpasswd and health checks whose
// configuration holds secrets (an http check URI with user:password@ and a query token, a file check
// path) fails its checks; an unauthenticated client asks /v2/. The 503 names the failing checks only;
// the reasons (URI redacted, path shown) are on the debug listener; the logs never carry the secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer } from '../../src/gateway/server.js';
import { createLogger } from '../../src/log/logger.js';
import { request } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

const sha = (pw: string) => `{SHA}${createHash('sha1').update(pw).digest('base64')}`;

test('an unauthenticated 503 names the failing checks only; the debug listener has the reasons; logs are redacted', async (t) => {
  const dir = await makeTempDir('berth-adv-health-');
  t.after(() => dir.cleanup());
  const upstream = createHttpServer((_req, res) => res.writeHead(500).end());
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { upstream.close(() => r()); upstream.closeAllConnections(); }));
  const port = (upstream.address() as AddressInfo).port;
  const uri = `http://monitor:Pa55word-secret@127.0.0.1:${port}/live?token=T0KEN-secret&deep=1`;
  const flag = join(dir.path, 'maintenance-secret-path');
  await writeFile(flag, '');
  await writeFile(join(dir.path, 'htpasswd'), `alice:${sha('alice-pw')}\n`);
  const config = loadConfigFromString(`listen: "127.0.0.1:0"
auth: { htpasswd: { path: htpasswd } }
registry:
  storage: { inmemory: {} }
  health:
    file: [{ file: ${flag}, interval: 20ms }]
    http: [{ uri: "${uri}", timeout: 1s, interval: 20ms }]
  http: { debug: { addr: "127.0.0.1:0" } }
`, join(dir.path, 'gateway.yml'));
  let logs = '';
  const log = createLogger({ level: 'debug', destination: new Writable({ write(c, _e, cb) { logs += c; cb(); } }) });
  const server = await startServer(config, log, { drainMs: 1000 });
  t.after(() => server.close());

  const r = await waitUntil('both checks failing', async () => {
    const res = await request(`${server.url}/v2/`);
    return res.status === 503 && res.json().errors[0].detail.checks.length === 2 && res;
  }, { intervalMs: 20 });
  assert.deepEqual(r.json(), { errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail: { checks: ['file_0', 'http_0'] } }] });
  for (const secret of ['Pa55word', 'T0KEN', 'monitor', 'secret', String(port), dir.path]) {
    assert.ok(!r.text().includes(secret), `503 body leaks ${secret}: ${r.text()}`);
  }

  const h = await request(`${server.debugUrl}/debug/health`);
  assert.equal(h.status, 503);
  assert.deepEqual(h.json(), {
    file_0: `file exists: ${flag}`,
    http_0: `HEAD http://***@127.0.0.1:${port}/live?token=***&deep=***: downstream service returned unexpected status: 500`,
  });

  const warn = logs.split('\n').filter((l) => l.includes('health check failing')).map((l) => JSON.parse(l));
  assert.ok(warn.some((l) => l.check === 'http_0' && l.target === `http://***@127.0.0.1:${port}/live?token=***&deep=***`), logs);
  assert.ok(!logs.includes('Pa55word') && !logs.includes('T0KEN'), 'credentials in the logs');
});
