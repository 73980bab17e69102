// The S3 writer's streamed parts (s3-writer.ts), on the real Ceph RGW: each part is sent while its bytes arrive
// and kept in the one part buffer until the store acknowledges it. These are the edges of that: a writer that ends
// mid-part (the streamed request is aborted; the rest becomes a shorter part of its own from 5 MiB, the tail object
// below), a body of unknown length (its first part is sent whole: under one part, one PutObject), a cancel while a
// part streams, and a write that spans several parts in uneven chunks. Every case checks the exact bytes and that no multipart upload is left.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { randomBlob } from '../support/oci-client.js';
import { s3Prefix, s3Skip, s3Store } from '../support/s3.js';
import { openMultipartUploads, prefixDriver, rawKeys, removePrefix } from '../support/s3-replicas.js';
import { startS3PartGate, type S3PartGate } from '../support/s3-request-log.js';
import { waitUntil } from '../support/wait.js';
import type { S3Driver } from '../../src/registry/storage/drivers/s3.js';
import { PartBuffers } from '../../src/registry/storage/drivers/s3-writer.js';

const MiB = 1024 * 1024;
const skip = await s3Skip();

/** `data` in chunks of `size` bytes (the last shorter), as a request body arrives. */
function chunked(data: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) parts.push(data.subarray(at, at + size));
  return Readable.from(parts);
}

async function withDriver(tag: string, fn: (d: S3Driver) => Promise<void>): Promise<void> {
  const s = await s3Store();
  const root = s3Prefix(tag);
  const d = prefixDriver(s, root);
  try {
    await fn(d);
  } finally {
    await d.close();
    await removePrefix(s, root);
  }
}

/** A driver whose requests pass through an S3PartGate in front of the store. */
async function withGate(tag: string, fn: (d: S3Driver, gate: S3PartGate) => Promise<void>): Promise<void> {
  const s = await s3Store();
  const gate = await startS3PartGate(s.endpoint);
  const root = s3Prefix(tag);
  const d = prefixDriver({ ...s, endpoint: gate.url }, root);
  try {
    await fn(d, gate);
  } finally {
    await d.close();
    await gate.close();
    await removePrefix(s, root);
  }
}

describe('s3 writer: streamed parts (chunksize 10 MiB)', { skip }, () => {
  test('parts overlap: the next part streams while the store has not yet answered the one before; the bytes are exact', async () => {
    await withGate('w-overlap', async (d, gate) => {
      gate.holdUntilNext(10_000, 3);   // a writer that waited for each answer would wait 10 s on each
      const data = randomBlob(35 * MiB + 5);
      const w = await d.writer('/o/data');
      await pipeline(chunked(data, 256 * 1024), w.stream);
      await w.commit();
      assert.deepEqual(gate.overlapped, [1, 2, 3], 'parts 2, 3 and 4 each started before the part before them was answered');
      assert.ok((await d.getContent('/o/data')).equals(data));
      assert.deepEqual(await openMultipartUploads(d), []);
    });
  });

  test('while the store has not answered a part, the next one streams but is not completed; the bytes are exact', async () => {
    await withGate('w-hold', async (d, gate) => {
      const answered = gate.holdAnswer(1, 1500);
      const data = randomBlob(25 * MiB + 5);
      const w = await d.writer('/n/data');
      await pipeline(chunked(data, 256 * 1024), w.stream);
      await w.commit();
      const before = await answered;
      assert.ok(before > 0, 'part 2 streamed before part 1 was answered');
      assert.ok(before < 10 * MiB, `part 2's last bytes waited for part 1's answer (${before} bytes came before it)`);
      assert.deepEqual(gate.stored, [1, 2, 3]);
      assert.ok((await d.getContent('/n/data')).equals(data));
      assert.deepEqual(await openMultipartUploads(d), []);
      assert.equal(d.buffers.seconds, 0, 'the second buffer went back');
    });
  });

  test('no second buffer to spare: the parts do not overlap (each waits for the answer before it), the bytes are exact', async () => {
    await withGate('w-no-spare', async (d, gate) => {
      Object.assign(d, { buffers: new PartBuffers(d.chunkSize, 0) });
      gate.holdUntilNext(300, 3);   // an overlapping writer's next part would release each answer at once
      const data = randomBlob(35 * MiB + 5);
      const w = await d.writer('/s/data');
      await pipeline(chunked(data, 256 * 1024), w.stream);
      await w.commit();
      assert.deepEqual(gate.overlapped, [], 'no part started before the one before it was answered');
      assert.deepEqual(gate.stored, [1, 2, 3, 4]);
      assert.ok((await d.getContent('/s/data')).equals(data));
      assert.deepEqual(await openMultipartUploads(d), []);
    });
  });

  test('a part the store fails once after its whole body is sent again from its buffer: the write succeeds, the bytes are exact', async () => {
    await withGate('w-retry-sent', async (d, gate) => {
      const data = randomBlob(36 * MiB + 3);
      gate.failAfterBody(2);
      const w = await d.writer('/r/data');
      await pipeline(chunked(data, 256 * 1024), w.stream);
      await w.commit();
      assert.deepEqual(gate.failed, [2]);
      assert.deepEqual(gate.stored, [1, 2, 3, 4], 'part 2 stored on its second sending, before part 3 was completed');
      assert.ok((await d.getContent('/r/data')).equals(data));
      assert.deepEqual(await openMultipartUploads(d), []);
      assert.equal(d.buffers.seconds, 0);
    });
  });

  test('a part the store fails after its whole body on every sending: the write fails, no later part is stored, the upload continues from the parts before', async () => {
    await withGate('w-fail-sent', async (d, gate) => {
      const p = '/x/data';
      const data = randomBlob(36 * MiB);
      gate.failAfterBody(2, 4);   // the streamed sending and the SDK's 3 attempts from the buffer
      let w = await d.writer(p);
      await assert.rejects(pipeline(chunked(data, 256 * 1024), w.stream), (err: Error) => /injected|InternalError|unavailable|store/i.test(`${err.name} ${err.message}`));
      await w.close!().catch(() => undefined);   // as a failed PATCH ends its writer: nothing more is stored
      assert.deepEqual(gate.failed, [2, 2, 2, 2], 'streamed once, then sent from its buffer with the SDK\'s 3 attempts');
      assert.deepEqual(gate.stored, [1], 'part 3 (streaming while part 2 failed) was never completed');
      assert.equal(d.buffers.seconds, 0, 'the failed writer gave its buffers back');
      const pend = await d.pendingState(p);
      assert.equal(pend?.size, 10 * MiB, 'the session is the part before the failed one');
      assert.equal(pend?.tailSize, 0);
      // The client resumes at the stored size (as after a 503 PATCH) and commits.
      w = await d.writer(p, { append: true });
      assert.equal(w.size, 10 * MiB);
      await pipeline(chunked(data.subarray(10 * MiB), 256 * 1024), w.stream);
      await w.commit();
      assert.ok((await d.getContent(p)).equals(data));
      assert.deepEqual(await openMultipartUploads(d), []);
    });
  });

  test('buffers bounded (2 for 4 writers at once): the others wait for one, never more than 2 out; every write exact', async () => {
    await withDriver('w-bound', async (d) => {
      Object.assign(d, { buffers: new PartBuffers(d.chunkSize, 1, 2) });
      const blobs = [0, 1, 2, 3].map(() => randomBlob(13 * MiB + 11));
      let waited = 0;
      const poll = setInterval(() => { waited = Math.max(waited, d.buffers.queued); }, 5);
      try {
        await Promise.all(blobs.map(async (data, i) => {
          const w = await d.writer(`/bound/${i}/data`);
          await pipeline(chunked(data, 256 * 1024), w.stream);
          await w.commit();
        }));
      } finally {
        clearInterval(poll);
      }
      assert.equal(d.buffers.peak, 2, 'never more than the bound out at once');
      assert.ok(waited >= 1, 'writers over the bound waited');
      assert.equal(d.buffers.inUse, 0, 'every buffer came back');
      for (const [i, data] of blobs.entries()) assert.ok((await d.getContent(`/bound/${i}/data`)).equals(data), `writer ${i}`);
      assert.deepEqual(await openMultipartUploads(d), []);
    });
  });

  test('a write across several parts in uneven chunks commits the exact bytes; nothing is left open', async () => {
    await withDriver('w-multi', async (d) => {
      const data = randomBlob(31 * MiB + 7);
      const w = await d.writer('/a/data');
      await pipeline(chunked(data, 777_777), w.stream);
      assert.equal(w.size, data.length);
      await w.commit();
      assert.ok((await d.getContent('/a/data')).equals(data));
      assert.deepEqual(await openMultipartUploads(d), []);
      assert.deepEqual(await rawKeys(d), ['/a/data']);
    });
  });

  test('a body of unknown length under one part (7 MiB, as docker sends a small layer) is one PutObject: no multipart upload, no part', async () => {
    await withGate('w-short', async (d, gate) => {
      const data = randomBlob(7 * MiB + 1);
      const w = await d.writer('/b/data');
      await pipeline(chunked(data, 64 * 1024), w.stream);
      await w.commit();
      assert.deepEqual(gate.requested, [], 'no UploadPart (streamed from 5 MiB, it was cut short at 7, aborted and sent again)');
      assert.ok((await d.getContent('/b/data')).equals(data));
      assert.deepEqual(await openMultipartUploads(d), []);
    });
  });

  test('a body of unknown length sends its first part whole from the buffer, then streams the parts after it; the bytes are exact', async () => {
    await withGate('w-unknown', async (d, gate) => {
      const data = randomBlob(25 * MiB + 5);
      const w = await d.writer('/u/data');
      const write = (b: Buffer) => new Promise<void>((resolve, reject) => w.stream.write(b, (err) => (err ? reject(err) : resolve())));
      for (let at = 0; at < 9 * MiB; at += 256 * 1024) await write(data.subarray(at, at + 256 * 1024));
      assert.deepEqual(gate.requested, [], 'nothing sent before the first part is full');
      const answered = gate.holdAnswer(1, 1000);
      await pipeline(chunked(data.subarray(9 * MiB), 256 * 1024), w.stream);
      await w.commit();
      assert.ok(await answered > 0, 'part 2 streamed while part 1 was unanswered');
      assert.equal(gate.requested.filter((n) => n === 1).length, 1, `part 1 sent once: ${gate.requested}`);
      assert.deepEqual(gate.stored, [1, 2, 3]);
      assert.ok((await d.getContent('/u/data')).equals(data));
      assert.deepEqual(await openMultipartUploads(d), []);
      assert.equal(d.buffers.seconds, 0, 'the second buffer went back');
    });
  });

  test('a writer closed mid-part keeps the rest as a part of its own from 5 MiB (no tail), as the tail below', async () => {
    await withDriver('w-close', async (d) => {
      const p = '/c/data';
      const one = randomBlob(17 * MiB);         // one part + 7 MiB: a second, shorter part, no tail
      const two = randomBlob(2 * MiB + 5);      // under 5 MiB: the tail
      const three = randomBlob(12 * MiB + 9);
      let w = await d.writer(p);
      await pipeline(chunked(one, 1 << 20), w.stream);
      await w.close!();
      let pend = await d.pendingState(p);
      assert.equal(pend?.parts.length, 2);
      assert.equal(pend?.tailSize, 0);
      assert.equal(pend?.size, 17 * MiB);
      assert.ok(!(await rawKeys(d)).includes(`${p}~tail`), 'no tail object');

      w = await d.writer(p, { append: true });
      assert.equal(w.size, 17 * MiB);
      await pipeline(chunked(two, 1 << 20), w.stream);
      await w.close!();
      pend = await d.pendingState(p);
      assert.equal(pend?.parts.length, 2);
      assert.equal(pend?.tailSize, two.length);
      assert.equal((await d.stat(p, { pending: true })).size, one.length + two.length);

      w = await d.writer(p, { append: true });
      await pipeline(chunked(three, 300_001), w.stream);
      await w.commit();
      assert.ok((await d.getContent(p)).equals(Buffer.concat([one, two, three])));
      assert.deepEqual(await rawKeys(d), [p], 'the commit removed the tail');
      assert.deepEqual(await openMultipartUploads(d), []);
    });
  });

  test('cancel while a part streams: no object, no tail, no open multipart upload', async () => {
    await withDriver('w-cancel', async (d) => {
      const w = await d.writer('/e/data');
      const data = randomBlob(13 * MiB);
      await new Promise<void>((resolve, reject) => w.stream.write(data, (err) => (err ? reject(err) : resolve())));
      // The first part was sent whole (acknowledged now or soon: parts overlap) and the second streams.
      assert.equal((await openMultipartUploads(d)).length, 1, 'a multipart upload is open');
      await w.cancel();
      assert.deepEqual(await openMultipartUploads(d), []);
      assert.deepEqual(await rawKeys(d), []);
    });
  });

  test('cancel while a failed part is sent again from its buffer: it returns without waiting for the store; nothing is left', async () => {
    await withGate('w-cancel-resend', async (d, gate) => {
      gate.failAfterBody(1);
      const answered = gate.holdAnswer(1, 10_000).then(() => 'the store answered the resent part');
      const data = randomBlob(20 * MiB);
      const w = await d.writer('/z/data', { sizeHint: 25 * MiB });   // a declared length: part 1 streams
      const writing = pipeline(chunked(data, 256 * 1024), w.stream).catch(() => undefined);
      await waitUntil('part 1 failed after its body and sent again', () => gate.requested.filter((n) => n === 1).length === 2);
      const cancelled = w.cancel().then(() => 'cancelled');
      assert.equal(await Promise.race([cancelled, answered]), 'cancelled', 'cancel did not wait for the held answer');
      await writing;
      assert.deepEqual(gate.failed, [1]);
      assert.deepEqual(await openMultipartUploads(d), []);
      assert.deepEqual(await rawKeys(d), []);
      assert.equal(d.buffers.seconds, 0);
    });
  });

  test('sizeHint sizes the parts so none is cut short: 16 MiB as 10 + 6, 12 MiB as 7 + 5, no tail; a wrong hint is harmless', async () => {
    await withDriver('w-hint', async (d) => {
      const p = '/h/data';
      const a = randomBlob(16 * MiB);
      const b = randomBlob(12 * MiB);
      const c = randomBlob(7 * MiB + 3);   // declared as 20 MiB: the client sent less
      let w = await d.writer(p, { sizeHint: a.length });
      await pipeline(chunked(a, 65_536), w.stream);
      await w.close!();
      let pend = await d.pendingState(p);
      assert.equal(pend?.parts.length, 2);
      assert.equal(pend?.tailSize, 0);
      w = await d.writer(p, { append: true, sizeHint: b.length });
      await pipeline(chunked(b, 65_536), w.stream);
      await w.close!();
      pend = await d.pendingState(p);
      assert.equal(pend?.parts.length, 4, '7 + 5 MiB');
      assert.equal(pend?.tailSize, 0);
      w = await d.writer(p, { append: true, sizeHint: 20 * MiB });
      await pipeline(chunked(c, 65_536), w.stream);
      await w.close!();
      assert.equal((await d.stat(p, { pending: true })).size, a.length + b.length + c.length);
      w = await d.writer(p, { append: true });
      await w.commit();
      assert.ok((await d.getContent(p)).equals(Buffer.concat([a, b, c])));
      assert.deepEqual(await openMultipartUploads(d), []);
      assert.deepEqual(await rawKeys(d), [p]);
    });
  });

  test('an upload this process knows has its parts listed directly; completed or aborted by another process, it is looked up anew', async () => {
    await withDriver('w-known', async (d) => {
      const s = await s3Store();
      const other = prefixDriver(s, d.params.rootdirectory);   // another replica on the same prefix
      try {
        const ops = await requestLog(d);
        const data = randomBlob(12 * MiB + 5);
        for (const p of ['/k/data', '/q/data']) {
          const w = await d.writer(p);
          await pipeline(chunked(data, 1 << 20), w.stream);
          await w.close!();
        }
        ops.length = 0;
        assert.equal((await d.stat('/k/data', { pending: true })).size, data.length);
        assert.ok(ops.includes('ListPartsCommand') && !ops.includes('ListMultipartUploadsCommand'), ops.join());

        // Completed on the other replica: this one's ListParts finds no such upload, and it looks again.
        const w = await other.writer('/k/data', { append: true });
        await w.commit();
        ops.length = 0;
        const fi = await d.stat('/k/data', { pending: true });
        assert.equal(fi.pending, undefined, 'the committed object, not an upload');
        assert.equal(fi.size, data.length);
        assert.ok(ops.includes('ListMultipartUploadsCommand'), ops.join());

        // Aborted (deleted) on the other replica: gone here too.
        await other.delete('/q/data');
        await assert.rejects(d.stat('/q/data', { pending: true }), (err: Error) => err.name === 'PathNotFoundError' || /not found/i.test(err.message));
        assert.ok((await d.getContent('/k/data')).equals(data));
        assert.deepEqual(await openMultipartUploads(d), []);
      } finally {
        await other.close();
      }
    });
  });

  test('writer(append, from: what stat(pending) just found) asks the store nothing more (once); the bytes are exact', async () => {
    await withDriver('w-from', async (d) => {
      const ops = await requestLog(d);
      const p = '/f/data';
      const a = randomBlob(12 * MiB + 11);   // one part + a tail
      const b = randomBlob(3 * MiB);
      let w = await d.writer(p);
      await pipeline(chunked(a, 1 << 20), w.stream);
      await w.close!();

      let fi = await d.stat(p, { pending: true });
      assert.equal(fi.pending, true);
      ops.length = 0;
      w = await d.writer(p, { append: true, from: fi });
      assert.deepEqual(ops, ['GetObjectCommand'], 'only the tail is read: no ListMultipartUploads, ListParts or HEAD');
      assert.equal(w.size, a.length);
      assert.equal(w.version, fi.version);
      await pipeline(chunked(b, 1 << 20), w.stream);
      await w.close!();

      ops.length = 0;
      const again = await d.writer(p, { append: true, from: fi });   // used already: the store is asked
      assert.ok(ops.includes('ListPartsCommand'), ops.join());
      assert.equal(again.size, a.length + b.length, 'the state after the second write, not the stale FileInfo\'s');
      await again.close!();

      ops.length = 0;
      await d.writer(p, { append: true, from: { ...(await d.stat(p, { pending: true })), path: '/f/other' } }).then((x) => x.close!());
      assert.equal(ops.filter((op) => op === 'ListPartsCommand').length, 2, `the stat's and the writer's: a FileInfo of another path (or a copy) is not taken: ${ops.join()}`);

      fi = await d.stat(p, { pending: true });
      ops.length = 0;
      w = await d.writer(p, { append: true, from: fi });
      await w.commit();
      assert.ok(!ops.includes('ListPartsCommand') && !ops.includes('ListMultipartUploadsCommand'), ops.join());
      assert.ok((await d.getContent(p)).equals(Buffer.concat([a, b])));

      // A committed object (stat with `pending` found no upload): its HEAD is not asked again.
      fi = await d.stat(p, { pending: true });
      assert.equal(fi.pending, undefined);
      ops.length = 0;
      w = await d.writer(p, { append: true, from: fi });
      assert.ok(!ops.includes('HeadObjectCommand'), ops.join());
      assert.equal(w.size, a.length + b.length);
      await w.close!();
      assert.deepEqual(await openMultipartUploads(d), []);
    });
  });
});

/** The SDK commands `d` sends from now on, in order (a middleware on its real client). */
async function requestLog(d: S3Driver): Promise<string[]> {
  const c = await d.connection();
  const ops: string[] = [];
  c.client.middlewareStack.add((next, context) => (args) => {
    ops.push(String((context as { commandName?: string }).commandName));
    return next(args);
  }, { step: 'initialize', name: `testRequestLog${Math.random()}` });
  return ops;
}
