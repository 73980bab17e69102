// Issue 14, point 4: failed uploads leak. berth's storage sits on a 2 MiB tmpfs (when this process may
// mount one: root; otherwise the leftover comes from a client that goes away mid-chunk). A chunked upload
// fills the disk and fails; its session keeps the partial bytes (the client has the id and gives up) and
// the disk stays full. A monolithic upload that fails leaves nothing. With the server stopped, `berth gc`
// lists the dead session in a dry run, then removes it (its last write is older than --upload-idle) and the
// space comes back: a new push succeeds. Loopback only; the tmpfs is unmounted afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, statfs, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { runGcCommand } from '../../src/cli/gc-command.js';
import { loadConfig } from '../../src/config/load.js';
import { startServer } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { pathFor } from '../../src/registry/storage/paths.js';
import { request } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';

const run = promisify(execFile);
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MiB = 1 << 20;

/** Mounts a 2 MiB tmpfs on dir; false when this process may not (not root, no mount(8)). */
async function tmpfs(dir: string): Promise<boolean> {
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

function io() {
  let out = ''; let err = '';
  return {
    io: { stdout: { write: (s: string) => { out += s; } }, stderr: { write: (s: string) => { err += s; return true; } } as NodeJS.WritableStream },
    out: () => out, err: () => err,
  };
}

test('a disk-full upload leaves a dead session; berth gc removes it and the space comes back', async (t) => {
  const dir = await makeTempDir('berth-adv-gc-');
  const data = join(dir.path, 'data');
  await mkdir(data);
  const mounted = await tmpfs(data);
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  t.after(async () => {
    await server?.close();
    if (mounted) await run('umount', [data], { timeout: 10_000 });
    await dir.cleanup();
  });
  const file = join(dir.path, 'gateway.yml');
  await writeFile(file, `listen: "127.0.0.1:0"
registry:
  storage:
    filesystem: { rootdirectory: ${data} }
    maintenance: { uploadpurging: { enabled: false } }
`);
  server = await startServer(await loadConfig(file, { env: {} }), silentLogger(), { drainMs: 1000 });
  const url = server.url;
  const uploads = join(data, pathFor({ kind: 'uploadsRoot', name: 'big' }));

  const start = await request(`${url}/v2/big/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const id = start.headers['docker-upload-uuid']!;
  const big = Buffer.alloc(3 * MiB, 7);
  if (mounted) {
    // The chunk does not fit: ENOSPC mid-body.
    const r = await request(`${url}${start.headers.location}`, { method: 'PATCH', body: big, fresh: true }).catch((e: Error) => e);
    assert.ok(r instanceof Error || r.status >= 500, r instanceof Error ? r.message : `${r.status} ${r.text()}`);
    assert.ok((await statfs(data)).bavail * (await statfs(data)).bsize < 256 * 1024, 'the disk is full');
    // A monolithic upload that fails leaves no session behind.
    const mono = await request(`${url}/v2/big/blobs/uploads/?digest=${sha(big)}`, { method: 'POST', body: big, fresh: true }).catch((e: Error) => e);
    assert.ok(mono instanceof Error || mono.status >= 500);
  } else {
    // No tmpfs: the client goes away after 1 MiB of a 3 MiB chunk; the session keeps what arrived.
    const body = Readable.from((async function* () { yield big.subarray(0, MiB); throw new Error('client gone'); })());
    await request(`${url}${start.headers.location}`, { method: 'PATCH', body, headers: { 'content-length': big.length }, fresh: true }).catch(() => undefined);
  }
  assert.deepEqual(await readdir(uploads), [id], 'only the chunked session is left');
  const leftover = join(uploads, id);
  if (mounted) assert.ok((await stat(join(leftover, 'data'))).size > 0, 'with its partial bytes');

  await server.close();
  server = undefined;
  // Time passes: nothing has written to the session for two hours.
  const old = new Date(Date.now() - 2 * 3600_000);
  for (const f of [...(await readdir(leftover)).map((n) => join(leftover, n)), leftover]) await utimes(f, old, old);

  const dry = io();
  assert.equal(await runGcCommand(['--config', file, '--dry-run'], { ...dry.io, env: {} }), 0, dry.err());
  assert.match(dry.out(), new RegExp(`^would delete upload big ${id}$`, 'm'));
  assert.ok(existsSync(leftover));
  const gc = io();
  assert.equal(await runGcCommand(['--config', file], { ...gc.io, env: {} }), 0, gc.err());
  assert.match(gc.out(), new RegExp(`^deleted upload big ${id}$`, 'm'));
  assert.match(gc.out(), /1 upload sessions\n$/);
  assert.deepEqual(await readdir(uploads), []);
  if (mounted) assert.ok((await statfs(data)).bavail * (await statfs(data)).bsize > 1.5 * MiB, 'the space is back');

  // A new push fits again.
  server = await startServer(await loadConfig(file, { env: {} }), silentLogger(), { drainMs: 1000 });
  const layer = Buffer.alloc(MiB, 1);
  const put = await request(`${server.url}/v2/big/blobs/uploads/?digest=${sha(layer)}`, { method: 'POST', body: layer });
  assert.equal(put.status, 201, put.text());
});
