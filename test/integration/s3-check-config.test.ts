// Wrong credentials or a missing bucket (#17 point 6): `check-config` asks the store (one ListObjectsV2, reading
// only) and names the key at its line:col, and `serve` refuses to start with the same line, on the Ceph RGW of
// test/support/s3.ts. The built CLI as a process (`npm run build` first).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli } from '../support/processes.js';
import { s3Skip, s3Store, type S3Settings } from '../support/s3.js';

const skip = await s3Skip();

function yaml(s: S3Settings, o: { secret?: string; access?: string; bucket?: string }): string {
  return ['listen: 127.0.0.1:0', 'upstreams:', '  v2: embedded', 'registry:', '  storage:', '    s3:',
    `      region: ${s.region}`, `      regionendpoint: ${s.endpoint}`, `      bucket: ${o.bucket ?? s.bucket}`,
    `      accesskey: ${o.access ?? s.accessKey}`, `      secretkey: ${o.secret ?? s.secretKey}`, '      secure: false', ''].join('\n');
}

describe('s3: the store refuses the configuration', { skip }, () => {
  test('a wrong secret, an unknown access key and a missing bucket: one line each from check-config and serve', async (t) => {
    const s = await s3Store();
    const dir = await mkdtemp(join(tmpdir(), 'berth-s3-check-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const cases: [string, Parameters<typeof yaml>[1], RegExp][] = [
      ['secret', { secret: 'x'.repeat(40) }, /:11:18 {2}registry\.storage\.s3\.secretkey {2}the store at http:\/\/127\.0\.0\.1:7480 refused the secret key \(SignatureDoesNotMatch\)$/],
      ['access', { access: 'NOSUCHKEY00000000000' }, /:10:18 {2}registry\.storage\.s3\.accesskey {2}the store at .* does not know this access key \(InvalidAccessKeyId\)$/],
      ['bucket', { bucket: 'no-such-bucket-berth' }, /:9:15 {2}registry\.storage\.s3\.bucket {2}bucket "no-such-bucket-berth" does not exist at http:\/\/127\.0\.0\.1:7480$/],
    ];
    for (const [name, o, line] of cases) {
      const file = join(dir, `${name}.yml`);
      await writeFile(file, yaml(s, o));
      const c = await runCli(['check-config', file]);
      assert.equal(c.code, 1, `${name}: ${c.stdout}${c.stderr}`);
      assert.match(c.stdout.trim(), line, name);
      const r = await runCli(['serve', '--config', file], {}, 30_000);
      assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /berth: cannot start\n/, name);
      assert.match(r.stderr.trim().split('\n').at(-1)!, line, name);
    }
    const ok = join(dir, 'ok.yml');
    await writeFile(ok, yaml(s, {}));
    const c = await runCli(['check-config', ok]);
    assert.equal(c.code, 0, c.stdout + c.stderr);
  });
});
