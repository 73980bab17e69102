// An https object store (Distribution's default, `secure: true`): the tests' Ceph RGW behind a TLS front with a
// self-signed certificate (test/support/tcp-forward.ts), as a store behind a TLS proxy or MinIO with a certificate of
// its own is reached. berth as a process (the built CLI). Trusted through AWS_CA_BUNDLE (the variable Distribution's
// driver reads): a push and a pull through berth, blob bodies relayed over TLS (redirect off), and with redirect on
// a 307 to the store's https URL that a client trusting the CA fetches. Not trusted: check-config and serve say so in
// one line naming what to set (so do a certificate for another name and https against a plain-HTTP port);
// skipverify: true accepts the certificate. An AWS_CA_BUNDLE that cannot be read: one line.
// A certificate rotated to an untrusted one while berth runs: 503 UNAVAILABLE (the store is unreachable as far as
// berth can trust it), then served again without a restart.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from '../support/http.js';
import { MT, descriptor, expectOciError, makeImageManifest, putManifest, pushBlob, randomBlob } from '../support/oci-client.js';
import { runCli, startBerth, type ServerProcess } from '../support/processes.js';
import { deleteS3Prefix } from '../support/registry-server.js';
import { s3Parameters, s3Prefix, s3Skip, s3Store, type S3Settings } from '../support/s3.js';
import { forwardTlsToTcp, type TlsForward } from '../support/tcp-forward.js';
import { makeTestCert, type TestCert } from '../support/tls-certs.js';

const MiB = 1024 * 1024;
const skip = await s3Skip();

describe('s3: an https store with its own certificate', { skip }, () => {
  let s: S3Settings;
  let front: TlsForward;
  let cert: TestCert;
  let dir: string;
  let caFile: string;
  const root = s3Prefix('tls');
  const servers: ServerProcess[] = [];
  before(async () => {
    s = await s3Store();
    cert = await makeTestCert();
    front = await forwardTlsToTcp(Number(new URL(s.endpoint).port), cert);
    dir = await mkdtemp(join(tmpdir(), 'berth-s3-tls-'));
    caFile = join(dir, 'store-ca.pem');
    await writeFile(caFile, cert.cert);
  });
  after(async () => {
    for (const p of servers) await p.stop();
    await front?.close();
    if (s) await deleteS3Prefix(s3Parameters(s, root));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const endpoint = () => `https://127.0.0.1:${front.port}`;
  function yaml(o: { skipverify?: boolean; redirect?: boolean } = {}): string {
    return ['listen: 127.0.0.1:0', 'upstreams:', '  v2: embedded', 'registry:', '  storage:', '    s3:',
      `      region: ${s.region}`, `      regionendpoint: ${endpoint()}`, `      bucket: ${s.bucket}`, `      rootdirectory: ${root}`,
      `      accesskey: ${s.accessKey}`, `      secretkey: ${s.secretKey}`, '      secure: true', `      skipverify: ${o.skipverify ?? false}`,
      '      chunksize: 5242880',
      `    redirect: { disable: ${!(o.redirect ?? false)} }`, '    delete: { enabled: true }', 'log: { level: warn }', ''].join('\n');
  }
  async function configFile(name: string, text: string): Promise<string> {
    const f = join(dir, name);
    await writeFile(f, text);
    return f;
  }
  async function serve(text: string, env: NodeJS.ProcessEnv): Promise<ServerProcess> {
    const p = await startBerth({ configYaml: text, env });
    servers.push(p);
    return p;
  }

  test('not trusted: check-config and serve name what to set, in one line at regionendpoint', async () => {
    const file = await configFile('untrusted.yml', yaml());
    const line = /:8:23 {2}registry\.storage\.s3\.regionendpoint {2}the store at https:\/\/127\.0\.0\.1:\d+ presented a certificate berth does not trust \(DEPTH_ZERO_SELF_SIGNED_CERT\): give its CA in AWS_CA_BUNDLE or NODE_EXTRA_CA_CERTS, or set skipverify: true$/;
    const c = await runCli(['check-config', file]);
    assert.equal(c.code, 1, c.stdout + c.stderr);
    assert.match(c.stdout.trim(), line);
    const r = await runCli(['serve', '--config', file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /berth: cannot start\n/);
    assert.match(r.stderr.trim().split('\n').at(-1)!, line);
  });

  test('a certificate for another name, and https against the plain-HTTP port: one line each at regionendpoint', async () => {
    const elsewhere = await makeTestCert(undefined, { dnsNames: ['store.example'] });
    const bundle = await configFile('elsewhere.pem', elsewhere.cert);
    const file = await configFile('elsewhere.yml', yaml());
    front.setCert(elsewhere);
    try {
      const c = await runCli(['check-config', file], { AWS_CA_BUNDLE: bundle });
      assert.equal(c.code, 1, c.stdout + c.stderr);
      assert.match(c.stdout.trim(), /registry\.storage\.s3\.regionendpoint {2}the store's certificate does not name https:\/\/127\.0\.0\.1:\d+ \(ERR_TLS_CERT_ALTNAME_INVALID\): use the name it was issued for, or set skipverify: true$/);
    } finally {
      front.setCert(cert);
    }
    const plain = await configFile('plain.yml', yaml().replace(endpoint(), `https://127.0.0.1:${new URL(s.endpoint).port}`));
    const c = await runCli(['check-config', plain], { AWS_CA_BUNDLE: caFile });
    assert.equal(c.code, 1, c.stdout + c.stderr);
    assert.match(c.stdout.trim(), /registry\.storage\.s3\.regionendpoint {2}the store at https:\/\/127\.0\.0\.1:\d+ does not answer TLS \((EPROTO|ERR_SSL_WRONG_VERSION_NUMBER)\): is it a plain-HTTP endpoint \(http:\/\/, secure: false\)\?$/);
  });

  test('AWS_CA_BUNDLE that cannot be read, or holds no certificate: one line naming it', async () => {
    const file = await configFile('bundle.yml', yaml());
    const empty = await configFile('empty.pem', 'no certificate here\n');
    for (const [bundle, why] of [[join(dir, 'missing.pem'), 'cannot read the store\'s CA bundle \\(file not found\\)'], [empty, 'no PEM certificate in the store\'s CA bundle']]) {
      const c = await runCli(['check-config', file], { AWS_CA_BUNDLE: bundle });
      assert.equal(c.code, 1, c.stdout + c.stderr);
      assert.match(c.stdout.trim(), new RegExp(`registry\\.storage\\.s3\\.regionendpoint {2}AWS_CA_BUNDLE=${bundle.replaceAll('.', '\\.')}: ${why}$`));
    }
  });

  test('trusted through AWS_CA_BUNDLE: check-config passes; a push and a pull through berth, blob bodies relayed over TLS', async () => {
    const file = await configFile('trusted.yml', yaml());
    const c = await runCli(['check-config', file], { AWS_CA_BUNDLE: caFile });
    assert.equal(c.code, 0, c.stdout + c.stderr);
    const b = await serve(yaml(), { AWS_CA_BUNDLE: caFile });
    const layer = randomBlob(12 * MiB + 3);   // a multipart upload (chunksize 5 MiB) over TLS
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    await pushBlob(b.url, 'tls/app', layer);
    await pushBlob(b.url, 'tls/app', config);
    const m = makeImageManifest({ config: descriptor(MT.ociConfig, config), layers: [descriptor(MT.ociLayer, layer)] });
    const put = await putManifest(b.url, 'tls/app', 'v1', m);
    assert.equal(put.res.status, 201);
    const back = await request(`${b.url}/v2/tls/app/manifests/v1`, { headers: { accept: MT.ociManifest } });
    assert.ok(back.status === 200 && back.body.equals(put.bytes), 'the manifest, read back from the https store');
    const got = await request(`${b.url}/v2/tls/app/blobs/${descriptor(MT.ociLayer, layer).digest}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(layer), 'the layer, relayed from the https store');
    const part = await request(`${b.url}/v2/tls/app/blobs/${descriptor(MT.ociLayer, layer).digest}`, { headers: { range: 'bytes=5242870-5242889' } });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(layer.subarray(5242870, 5242890)));
  });

  test('redirect on: the 307 points at the store\'s https URL, which a client trusting its CA fetches', async () => {
    const b = await serve(yaml({ redirect: true }), { AWS_CA_BUNDLE: caFile });
    const blob = randomBlob(64 * 1024);
    const digest = await pushBlob(b.url, 'tls/redirect', blob);
    const r = await request(`${b.url}/v2/tls/redirect/blobs/${digest}`);
    assert.equal(r.status, 307);
    const loc = new URL(r.headers.location!);
    assert.equal(loc.origin, endpoint());
    const fetched = await request(loc, { ca: cert.cert });
    assert.equal(fetched.status, 200);
    assert.ok(fetched.body.equals(blob));
  });

  test('the store\'s certificate rotated to one berth does not trust: 503 UNAVAILABLE, not an unknown error; back without a restart', async () => {
    const b = await serve(yaml(), { AWS_CA_BUNDLE: caFile });
    const blob = randomBlob(70 * 1024);
    const digest = await pushBlob(b.url, 'tls/rotate', blob);
    const other = await makeTestCert();
    front.setCert(other);
    front.drop();   // berth's kept-alive connections to the store end: the next ones see the new certificate
    try {
      const r = await request(`${b.url}/v2/tls/rotate/blobs/${digest}`);
      await expectOciError(r, 503, 'UNAVAILABLE');
      assert.equal(r.headers['retry-after'], '5');
      await expectOciError(await request(`${b.url}/v2/tls/rotate/blobs/uploads/`, { method: 'POST' }), 503, 'UNAVAILABLE');
    } finally {
      front.setCert(cert);
    }
    const got = await request(`${b.url}/v2/tls/rotate/blobs/${digest}`);
    assert.ok(got.status === 200 && got.body.equals(blob), 'served again once the store presents a trusted certificate');
  });

  test('skipverify: true accepts the certificate without its CA', async () => {
    const file = await configFile('skip.yml', yaml({ skipverify: true }));
    const c = await runCli(['check-config', file]);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    const b = await serve(yaml({ skipverify: true }), { AWS_CA_BUNDLE: '' });
    const blob = randomBlob(6 * MiB);
    const digest = await pushBlob(b.url, 'tls/skip', blob);
    const got = await request(`${b.url}/v2/tls/skip/blobs/${digest}`);
    assert.ok(got.status === 200 && got.body.equals(blob));
  });
});
