// Access rules with client-certificate users (tls.clientcas, no auth.htpasswd): the subject CN of a verified
// certificate is the user the rules decide for; a request without a certificate is anonymous, and a refusal is
// 403 DENIED (there is nothing to log in with). Real TLS (openssl-made PKI), real berth in-process.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as https from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer } from '../../src/gateway/server.js';
import { captureLog } from '../support/tls-certs.js';
import { makeTempDir } from '../support/tmp.js';
import { withDeadline } from '../support/wait.js';

const run = promisify(execFile);

async function makePki(dir: string) {
  const f = (n: string) => join(dir, n);
  const ossl = (...args: string[]) => run('openssl', args, { timeout: 30_000 });
  await ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.crt'),
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
  await ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'),
    '-days', '2', '-subj', '/CN=berth access test CA');
  for (const who of ['alice', 'bob']) {
    await ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who}`);
    await ossl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.crt`), '-days', '2');
  }
  const read = (n: string) => readFile(f(n), 'utf8');
  return { serverCert: await read('server.crt'), alice: { cert: await read('alice.crt'), key: await read('alice.key') }, bob: { cert: await read('bob.crt'), key: await read('bob.key') } };
}

function call(port: number, ca: string, method: string, path: string, client?: { cert: string; key: string }): Promise<{ status: number; body: string; challenge?: string }> {
  return withDeadline(new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path, ca, servername: 'localhost', agent: false, ...client }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode!, body, challenge: res.headers['www-authenticate'] }));
    });
    req.once('error', reject);
    req.end();
  }), 15_000, `${method} ${path}`);
}

test('client-certificate users: the CN is the user the rules decide for; no certificate is anonymous; refusals are 403', async (t) => {
  const tmp = await makeTempDir('berth-access-cert-');
  t.after(() => tmp.cleanup());
  const pki = await makePki(tmp.path);
  const config = loadConfigFromString([
    'listen: "127.0.0.1:0"',
    'tls: { certificate: server.crt, key: server.key, clientcas: [ca.crt], clientauth: verify-client-cert-if-given }',
    'registry: { storage: { inmemory: {} } }',
    'auth:',
    '  access:',
    '    rules:',
    '      - { repositories: ["public/**"], pull: ["*", anonymous] }',
    '      - { repositories: ["team/**"], pull: [alice], push: [alice] }',
  ].join('\n'), join(tmp.path, 'gateway.yml'));
  const cap = captureLog('info');
  const server = await startServer(config, cap.log, { drainMs: 500 });
  t.after(() => server.close());
  const port = Number(new URL(server.url).port);
  const rows: [string, string, { cert: string; key: string } | undefined, number][] = [
    ['GET', '/v2/', undefined, 200],
    ['POST', '/v2/team/app/blobs/uploads/', pki.alice, 202],
    ['POST', '/v2/team/app/blobs/uploads/', pki.bob, 403],
    ['POST', '/v2/team/app/blobs/uploads/', undefined, 403],
    ['GET', '/v2/public/x/tags/list', undefined, 404],      // allowed; the repository does not exist
    ['GET', '/v2/public/x/tags/list', pki.bob, 404],
    ['GET', '/v2/team/app/tags/list', pki.bob, 403],
  ];
  for (const [method, path, client, status] of rows) {
    const who = client === pki.alice ? 'alice' : client === pki.bob ? 'bob' : 'no certificate';
    const r = await call(port, pki.serverCert, method, path, client);
    assert.equal(r.status, status, `${who} ${method} ${path}: ${r.body}`);
    if (status === 403) {
      assert.equal(JSON.parse(r.body).errors[0].code, 'DENIED');
      assert.equal(r.challenge, undefined);
    }
  }
  const line = cap.lines.find((l) => l.msg === 'request completed' && l.user === 'bob' && l.status === 403);
  assert.equal(line?.access, 'denied');
  assert.equal(line?.rule, 'rules[1] team/**');
});
