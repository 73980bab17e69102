// The filesystem driver's append stream: bytes land in order whatever the chunk sizes and however writes
// get batched (writev), appending to what is there; destroy waits for the write in flight before 'close'
// (the caller closes the fd then); a failing write reaches the pipeline. Real files in a temp dir. The
// failing-fdatasync case needs a FIFO (mkfifo, a subprocess): test/integration/fs-append-stream-sync.test.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { AppendStream } from '../../src/registry/storage/drivers/fs-append-stream.js';
import { makeTempDir } from '../support/tmp.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

describe('AppendStream', () => {
  it('writes every byte in order for any mix of chunk sizes, after what the file held', async (t) => {
    const tmp = await makeTempDir('berth-as');
    t.after(() => tmp.cleanup());
    const file = join(tmp.path, 'data');
    const prior = randomBytes(333);
    const fd0 = openSync(file, 'w');
    await pipeline(Readable.from([prior]), new AppendStream(fd0));
    closeSync(fd0);
    // Many small chunks pushed at once queue up behind the first write and go out as writevs.
    const sizes = [1, 16_384, 16_384, MiB - 5, 7, 3 * MiB + 11, ...Array(200).fill(16_384), 1, 2 * MiB, 100];
    const chunks = sizes.map((n) => randomBytes(n));
    const fd = openSync(file, 'a');
    t.after(() => closeSync(fd));
    const s = new AppendStream(fd, { highWaterMark: 256 * 1024 });
    await pipeline(Readable.from(chunks), s);
    const want = Buffer.concat([prior, ...chunks]);
    assert.equal(s.bytesWritten, want.length - prior.length);
    assert.equal(sha(readFileSync(file)), sha(want));
  });

  it('destroyed mid-write, it closes only after the write in flight has landed', async (t) => {
    const tmp = await makeTempDir('berth-as');
    t.after(() => tmp.cleanup());
    const fd = openSync(join(tmp.path, 'data'), 'w');
    t.after(() => closeSync(fd));
    const s = new AppendStream(fd);
    const a = randomBytes(8 * MiB);
    s.write(a);
    s.destroy();
    await new Promise((r) => s.once('close', r));
    assert.equal(fstatSync(fd).size, s.bytesWritten);
    assert.equal(s.bytesWritten, a.length, 'the write in flight completed before close');
  });

  it('a failing write rejects the pipeline', async (t) => {
    const tmp = await makeTempDir('berth-as');
    t.after(() => tmp.cleanup());
    const file = join(tmp.path, 'data');
    closeSync(openSync(file, 'w'));
    const fd = openSync(file, 'r');   // not writable: EBADF
    t.after(() => closeSync(fd));
    const src = Readable.from((function* () { for (let i = 0; i < 64; i++) yield randomBytes(64 * 1024); })());
    await assert.rejects(pipeline(src, new AppendStream(fd)), (e: NodeJS.ErrnoException) => e.code === 'EBADF');
  });
});
