// O_DIRECT in the filesystem driver, on real files in a temp dir (ext4 on the test machines; the kernel
// really checks alignment): the direct append stream writes every accepted byte in order from any start
// offset (unaligned heads and tails go through the page cache), falls back when the kernel refuses, keeps
// accepted bytes on destroy and stops at the first failed write; reader() returns exactly the asked-for
// bytes for any offset with direct reads and recycled blocks, and `directio: false` turns it all off.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { DirectAppendStream } from '../../src/registry/storage/drivers/fs-direct-stream.js';
import { READ_BLOCK, WRITE_BLOCK as BLOCK, blockBytes, giveBack, takeBlock } from '../../src/registry/storage/drivers/aligned-blocks.js';
import { FilesystemDriver } from '../../src/registry/storage/drivers/filesystem.js';
import { StorageParameterError } from '../../src/registry/storage/base.js';
import { recyclerOf } from '../../src/util/recycle.js';
import { makeTempDir } from '../support/tmp.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

/** A fresh temp file and a direct stream on it from offset 0 (dir and descriptors cleaned up after `t`). */
async function freshStream(t: { after(fn: () => unknown): void }): Promise<{ file: string; s: DirectAppendStream }> {
  const tmp = await makeTempDir('berth-dio');
  t.after(() => tmp.cleanup());
  const file = join(tmp.path, 'data');
  const fds = openPair(file, Buffer.alloc(0));
  t.after(() => fds.close());
  return { file, s: new DirectAppendStream(fds, 0) };
}

/** A file holding `prior`, and the two descriptors the driver would open on it. */
function openPair(file: string, prior: Buffer): { append: number; direct: number; close(): void } {
  writeFileSync(file, prior);
  const append = openSync(file, 'a');
  const direct = openSync(file, constants.O_WRONLY | constants.O_DIRECT);
  return { append, direct, close() { closeSync(append); closeSync(direct); } };
}

describe('DirectAppendStream', () => {
  for (const priorLen of [0, 333, 4096, 2 * MiB + 1]) {
    it(`writes every byte in order after ${priorLen} bytes, for any mix of chunk sizes`, async (t) => {
      const tmp = await makeTempDir('berth-dio');
      t.after(() => tmp.cleanup());
      const file = join(tmp.path, 'data');
      const prior = randomBytes(priorLen);
      const fds = openPair(file, prior);
      t.after(() => fds.close());
      const sizes = [1, 16_384, 4095, MiB - 5, 7, 3 * MiB + 11, ...Array(130).fill(16_384), 1, BLOCK, 100];
      const chunks = sizes.map((n) => randomBytes(n));
      const s = new DirectAppendStream(fds, priorLen, { highWaterMark: 256 * 1024 });
      await pipeline(Readable.from(chunks), s);
      const want = Buffer.concat([prior, ...chunks]);
      assert.equal(s.bytesWritten, want.length - prior.length);
      assert.equal(s.pendingBytes, 0);
      assert.equal(sha(readFileSync(file)), sha(want));
    });
  }

  it('when the kernel refuses an O_DIRECT write (EINVAL), writes on through the page cache and says so', async (t) => {
    const tmp = await makeTempDir('berth-dio');
    t.after(() => tmp.cleanup());
    const file = join(tmp.path, 'data');
    const prior = randomBytes(256);
    const fds = openPair(file, prior);
    t.after(() => fds.close());
    const refused: Error[] = [];
    // align 256 with a start at 256: the first block goes to file offset 256, which ext4 refuses for O_DIRECT.
    const s = new DirectAppendStream(fds, 256, { align: 256, onRefused: (e) => refused.push(e) });
    const chunks = [randomBytes(3 * BLOCK + 77), randomBytes(5)];
    await pipeline(Readable.from(chunks), s);
    assert.equal(refused.length, 1);
    assert.equal((refused[0] as NodeJS.ErrnoException).code, 'EINVAL');
    assert.equal(sha(readFileSync(file)), sha(Buffer.concat([prior, ...chunks])));
  });

  it('destroyed mid-stream, the file still gets every byte the stream accepted', async (t) => {
    const { file, s } = await freshStream(t);
    const accepted: Buffer[] = [];
    for (const n of [BLOCK + 10, 4096, 300]) {
      const b = randomBytes(n);
      await new Promise<void>((res, rej) => s.write(b, (e) => (e ? rej(e) : res())));
      accepted.push(b);
    }
    assert.equal(s.bytesWritten + s.pendingBytes, BLOCK + 10 + 4096 + 300);
    s.destroy();
    await new Promise((r) => s.once('close', r));
    assert.equal(sha(readFileSync(file)), sha(Buffer.concat(accepted)));
  });

  it('when input stalls, staged bytes reach the file (a crash then loses nothing the client sent)', async (t) => {
    const { file, s } = await freshStream(t);
    const parts = [randomBytes(BLOCK + 5000), randomBytes(123_457)];
    await new Promise<void>((res, rej) => s.write(parts[0], (e) => (e ? rej(e) : res())));
    const deadline = Date.now() + 5000;   // the idle flush runs ~100-200 ms after the last byte
    while (statSync(file).size < parts[0]!.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(statSync(file).size, parts[0]!.length, 'everything accepted is in the file while the stream is open');
    assert.ok(readFileSync(file).equals(parts[0]!));
    // Then the stream goes on from the unaligned offset it stopped at.
    await pipeline(Readable.from([parts[1]!]), s);
    assert.equal(sha(readFileSync(file)), sha(Buffer.concat(parts)));
  });

  it('after a failed write nothing more is written: the file keeps a correct prefix', async (t) => {
    const tmp = await makeTempDir('berth-dio');
    t.after(() => tmp.cleanup());
    const file = join(tmp.path, 'data');
    writeFileSync(file, '');
    const append = openSync(file, 'a');
    const readOnly = openSync(file, constants.O_RDONLY | constants.O_DIRECT);   // writes fail with EBADF
    t.after(() => { closeSync(append); closeSync(readOnly); });
    const s = new DirectAppendStream({ append, direct: readOnly }, 0);
    await assert.rejects(pipeline(Readable.from([randomBytes(2 * BLOCK + 9)]), s), { code: 'EBADF' });
    await new Promise((r) => (s.closed ? r(null) : s.once('close', r)));
    assert.equal(statSync(file).size, 0);
  });
});

describe('FilesystemDriver with directio', () => {
  async function readAll(r: Readable): Promise<Buffer> {
    const recycle = recyclerOf(r);
    const parts: Buffer[] = [];
    for await (const c of r) { parts.push(Buffer.from(c as Buffer)); recycle?.(c as Buffer); }   // copy, then hand back
    return Buffer.concat(parts);
  }

  for (const directio of [true, false]) {
    it(`directio ${directio}: uploads through writer() and reads at any offset return exactly the stored bytes`, async (t) => {
      const tmp = await makeTempDir('berth-dio');
      t.after(() => tmp.cleanup());
      const d = new FilesystemDriver({ rootdirectory: tmp.path, directio });
      const big = randomBytes(5 * MiB + 123);
      // Two appends, the second starting unaligned (a resumed upload), then commit.
      const cut = 3 * MiB + 17;
      for (const [a, b] of [[0, cut], [cut, big.length]] as const) {
        const w = await d.writer('/up/data', { append: true });
        assert.equal(w.size, a);
        await pipeline(Readable.from([big.subarray(a, a + 5000), big.subarray(a + 5000, b)]), w.stream);
        await w.commit();
        assert.equal(w.size, b);
      }
      for (const off of [0, 1, 4095, 4096, READ_BLOCK - 1, READ_BLOCK, 2 * READ_BLOCK + 5, big.length - MiB, big.length - 1, big.length]) {
        const got = await readAll(await d.reader('/up/data', { offset: off }));
        assert.equal(got.length, big.length - off, `offset ${off}`);
        assert.ok(got.equals(big.subarray(off)), `bytes from offset ${off}`);
      }
      const small = randomBytes(70_000);
      await d.putContent('/small', small);
      assert.ok((await readAll(await d.reader('/small', { offset: 3 }))).equals(small.subarray(3)));
    });
  }

  it('when the filesystem refuses an O_DIRECT write, the driver reports it once and goes on through the page cache', async (t) => {
    const tmp = await makeTempDir('berth-dio');
    t.after(() => tmp.cleanup());
    const reports: string[] = [];
    // directAlign 256: after a 256-byte first append the next direct block goes to file offset 256, which the
    // kernel refuses (EINVAL) on a 512 B or 4 KiB device, as a filesystem without O_DIRECT would.
    const d = new FilesystemDriver({ rootdirectory: tmp.path, directAlign: 256,
      onDirectIoRefused: (err, op) => reports.push(`${(err as NodeJS.ErrnoException).code} ${op}`) });
    const data = randomBytes(4 * MiB + 300);
    for (const [a, b] of [[0, 256], [256, 2 * MiB + 9], [2 * MiB + 9, data.length]] as const) {
      const w = await d.writer('/up/data', { append: true });
      await pipeline(Readable.from([data.subarray(a, b)]), w.stream);
      await w.commit();
    }
    assert.deepEqual(reports, ['EINVAL write'], 'reported once, for the first refused write');
    const parts: Buffer[] = [];
    for await (const c of await d.reader('/up/data', { offset: 5 })) parts.push(Buffer.from(c as Buffer));
    assert.ok(Buffer.concat(parts).equals(data.subarray(5)), 'every byte stored, read back through the page cache');
    assert.deepEqual(reports, ['EINVAL write'], 'no report from later reads');
  });

  it('refuses a directio that is not a boolean, by config key', () => {
    assert.throws(() => new FilesystemDriver({ rootdirectory: '/tmp', directio: 'yes' as unknown as boolean }),
      (e: unknown) => e instanceof StorageParameterError && /registry\.storage\.filesystem\.directio/.test(String(e)));
  });

  it('with the block budget used up, writes and reads go through the page cache and stay exact', async (t) => {
    const tmp = await makeTempDir('berth-dio');
    t.after(() => tmp.cleanup());
    const held: Buffer[] = [];
    for (let b = takeBlock(READ_BLOCK); b; b = takeBlock(READ_BLOCK)) held.push(b);
    t.after(() => held.forEach(giveBack));
    for (let b = takeBlock(BLOCK); b; b = takeBlock(BLOCK)) held.push(b);   // idle write blocks too
    assert.ok(blockBytes().live <= 32 * MiB, `budget is bounded (${held.length} blocks held)`);
    assert.equal(takeBlock(READ_BLOCK), null);
    const d = new FilesystemDriver({ rootdirectory: tmp.path });
    const data = randomBytes(3 * READ_BLOCK + 999);
    const w = await d.writer('/f', { append: true });
    await pipeline(Readable.from([data]), w.stream);
    await w.commit();
    const mid = readAll(await d.reader('/f', { offset: 4097 }));
    const r = held.findIndex((b) => b.length === READ_BLOCK);
    giveBack(held.splice(r, 1)[0]!);   // one read block free again: the reader goes on direct where it can
    assert.ok((await mid).equals(data.subarray(4097)));
    assert.ok(blockBytes().live <= 32 * MiB);
  });

  it('many readers at once each get their own bytes (blocks are shared through one pool)', async (t) => {
    const tmp = await makeTempDir('berth-dio');
    t.after(() => tmp.cleanup());
    const d = new FilesystemDriver({ rootdirectory: tmp.path });
    const files = await Promise.all([0, 1, 2, 3, 4, 5].map(async (i) => {
      const b = randomBytes(3 * BLOCK + i * 1000);
      const w = await d.writer(`/f${i}`);
      await pipeline(Readable.from([b]), w.stream);
      await w.commit();
      return b;
    }));
    const got = await Promise.all(files.map(async (_, i) => readAll(await d.reader(`/f${i}`, { offset: i * 7 }))));
    got.forEach((g, i) => assert.ok(g.equals(files[i]!.subarray(i * 7)), `file ${i}`));
  });
});
