// The filesystem driver's append stream when the background fdatasync fails: the stream fails at end,
// after every byte was written (Linux reports a writeback error only once). A FIFO makes a real failing
// sync (fdatasync on a FIFO is EINVAL); mkfifo is a subprocess, hence integration.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, createReadStream, openSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { AppendStream } from '../../src/registry/storage/drivers/fs-append-stream.js';
import { makeTempDir } from '../support/tmp.js';

const MiB = 1024 * 1024;

describe('AppendStream', () => {
  it('a failed background fdatasync fails the stream at end (Linux reports a writeback error only once)', async (t) => {
    // fdatasync on a FIFO fails with EINVAL while writes to it succeed: a real failing sync, no mocks.
    const tmp = await makeTempDir('berth-as');
    t.after(() => tmp.cleanup());
    const fifo = join(tmp.path, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const wfd = openSync(fifo, 'r+');        // O_RDWR: opening a FIFO this way does not block on Linux
    t.after(() => closeSync(wfd));
    const reader = createReadStream(fifo);   // drains the pipe so writes never block
    let drained = 0;
    reader.on('data', (c) => { drained += (c as Buffer).length; });
    t.after(() => reader.destroy());
    const s = new AppendStream(wfd);
    await assert.rejects(pipeline(Readable.from([randomBytes(3 * MiB), randomBytes(MiB)]), s),
      (err: NodeJS.ErrnoException) => err.code === 'EINVAL');
    assert.equal(s.bytesWritten, 4 * MiB, 'every byte was written; only the sync failed');
    assert.equal((s.syncError as NodeJS.ErrnoException | null)?.code, 'EINVAL');
  });
});
