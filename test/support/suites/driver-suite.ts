// Conformance suite for StorageDriver implementations (after distribution's storagedriver/testsuites),
// run once per driver by test/integration/storage-drivers.test.ts. It drives the driver through
// wrapDriver, uses only the interface, and must not depend on one driver's internals.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { wrapDriver } from '../../../src/registry/storage/base.js';
import { waitUntil } from '../wait.js';
import type { FileInfo, FileWriter, StorageDriver } from '../../../src/registry/storage/driver.js';

export interface DriverHandle {
  /** A fresh, empty driver (the suite wraps it with wrapDriver itself). */
  driver: StorageDriver;
  /** Releases everything (temp dirs, buckets); the suite calls it after every test. */
  cleanup(): Promise<void>;
  /**
   * Every entry the backend really holds, as driver paths, including anything list()/walk() hide
   * (temp files). When given, the suite checks after each test that nothing hidden was left behind.
   */
  rawEntries?(): Promise<string[]>;
}

const MiB = 1024 * 1024;

/** The fields of a thrown error the suite looks at (drivers throw Errors with these; anything may be thrown). */
type Thrown = { code?: unknown; name?: unknown; message?: unknown; driver?: unknown; path?: unknown } | null | undefined;
const codeOf = (err: unknown): unknown => (err as Thrown)?.code;

const hasCode = (code: string, driver?: string) => (err: unknown) => {
  const e = err as Thrown;
  assert.equal(e?.code, code, `expected ${code}, got ${String(e?.code)}: ${String(e?.message)}`);
  if (driver !== undefined) assert.equal(e?.driver, driver, 'error carries the driver name');
  return true;
};
const isAbort = (err: unknown) => {
  const e = err as Thrown;
  assert.equal(e?.name, 'AbortError', `expected AbortError, got ${String(e?.name)}: ${String(e?.message)}`);
  return true;
};

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function sha256Of(r: Readable): Promise<{ hex: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await pipeline(r, new Writable({ write(c: Buffer, _e, cb) { h.update(c); size += c.length; cb(); } }));
  return { hex: h.digest('hex'), size };
}

async function visible(d: StorageDriver): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const fi of d.walk('/')) out.push(fi.path);
  } catch (err) {
    if (codeOf(err) !== 'STORAGE_PATH_NOT_FOUND') throw err;
  }
  return out.sort();
}

/** `total` bytes in `chunk`-sized pieces, each different, generated on demand (never all in memory). */
function generated(total: number, chunk = MiB): { stream: () => Readable; digest(from?: number): string } {
  const seed = randomBytes(chunk);
  const piece = (i: number) => {
    const b = Buffer.from(seed);
    b.writeUInt32BE(i, 0);
    const len = Math.min(chunk, total - i * chunk);
    return b.subarray(0, len);
  };
  const count = Math.ceil(total / chunk);
  return {
    stream: () => Readable.from((function* () { for (let i = 0; i < count; i++) yield piece(i); })(), { objectMode: false }),
    digest(from = 0) {
      const h = createHash('sha256');
      for (let i = 0; i < count; i++) {
        const p = piece(i);
        const start = i * chunk;
        if (start + p.length <= from) continue;
        h.update(start >= from ? p : p.subarray(from - start));
      }
      return h.digest('hex');
    },
  };
}

export interface SuiteOptions {
  /** False for object stores (S3): a directory exists only while something is below it, so an emptied
   *  directory is PathNotFound instead of listing as [] (default true). */
  emptyDirectories?: boolean;
  /** Passed to describe(): a skip reason (tools missing outside CI). */
  skip?: string | false;
}

export function runDriverSuite(name: string, makeDriver: () => Promise<DriverHandle>, opts: SuiteOptions = {}): void {
  const emptyDirs = opts.emptyDirectories ?? true;
  /** list() of a directory whose last child is gone: [] where directories persist, PathNotFound where they don't. */
  const assertEmptyDir = async (d: StorageDriver, p: string, message: string) => {
    if (emptyDirs) assert.deepEqual(await d.list(p), [], message);
    else await assert.rejects(d.list(p), hasCode('STORAGE_PATH_NOT_FOUND'), message);
  };
  describe(`storage driver conformance: ${name}`, { skip: opts.skip }, () => {
    /** One test: fresh driver, body, then check nothing hidden is left and delete-all leaves nothing. */
    const test = (title: string, body: (d: StorageDriver, dn: string) => Promise<void>) =>
      it(title, async () => {
        const h = await makeDriver();
        const d = wrapDriver(h.driver);
        try {
          await body(d, h.driver.name);
          if (h.rawEntries) {
            assert.deepEqual((await h.rawEntries()).sort(), await visible(d), 'no hidden files left behind');
          }
          let top: string[] = [];
          try { top = await d.list('/'); } catch (err) { if (codeOf(err) !== 'STORAGE_PATH_NOT_FOUND') throw err; }
          for (const p of top) await d.delete(p);
          assert.deepEqual(await visible(d), [], 'delete() removed everything');
          if (h.rawEntries) assert.deepEqual(await h.rawEntries(), [], 'nothing left in the backend');
        } finally {
          await h.cleanup();
        }
      });

    test('putContent then getContent round-trips, creating parents', async (d) => {
      for (const size of [0, 1, 4096, MiB + 7]) {
        const data = randomBytes(size);
        const p = `/put/deep/er/file-${size}`;
        await d.putContent(p, data);
        assert.ok((await d.getContent(p)).equals(data), `size ${size}`);
      }
      await d.putContent('/put/u8', new Uint8Array([1, 2, 3]));
      assert.deepEqual([...(await d.getContent('/put/u8'))], [1, 2, 3]);
    });

    test('getContent of a missing path or a directory is PathNotFound', async (d, dn) => {
      await assert.rejects(d.getContent('/missing/file'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      await d.putContent('/g/dir/file', Buffer.from('x'));
      await assert.rejects(d.getContent('/g/dir'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      await assert.rejects(d.getContent('/g/dir/file/below'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
    });

    test('putContent overwrites completely (a shorter value leaves no tail)', async (d) => {
      await d.putContent('/ow/f', randomBytes(MiB));
      await d.putContent('/ow/f', Buffer.from('short'));
      assert.equal((await d.getContent('/ow/f')).toString(), 'short');
      assert.equal((await d.stat('/ow/f')).size, 5);
    });

    test('readers racing overwrites see a whole old or new value, never a mix', async (d) => {
      const values = Array.from({ length: 12 }, (_, i) => Buffer.alloc(64 * 1024 + i * 1000, 65 + i));
      await d.putContent('/race/f', values[0]);
      const writes = (async () => { for (const v of values.slice(1)) await d.putContent('/race/f', v); })();
      const reads = Array.from({ length: 40 }, () => d.getContent('/race/f'));
      const seen = await Promise.all(reads);
      await writes;
      for (const s of seen) assert.ok(values.some((v) => v.equals(s)), `read a torn value of ${s.length} bytes`);
      assert.ok(values[values.length - 1].equals(await d.getContent('/race/f')));
    });

    test('concurrent putContent to one path leaves exactly one complete value', async (d) => {
      const values = Array.from({ length: 16 }, (_, i) => Buffer.alloc(32 * 1024 + i * 517, 97 + i));
      await Promise.all(values.map((v) => d.putContent('/cc/same', v)));
      const got = await d.getContent('/cc/same');
      assert.ok(values.some((v) => v.equals(got)), 'final value is one of the written values');
      assert.deepEqual(await d.list('/cc'), ['/cc/same'], 'no temp files visible');
    });

    test('reader honours offsets: 0, middle, size (empty), beyond size (InvalidOffset)', async (d, dn) => {
      const data = randomBytes(300 * 1024 + 3);
      await d.putContent('/rd/f', data);
      assert.ok((await readAll(await d.reader('/rd/f'))).equals(data));
      for (const off of [1, 1000, 150 * 1024, data.length - 1]) {
        assert.ok((await readAll(await d.reader('/rd/f', { offset: off }))).equals(data.subarray(off)), `offset ${off}`);
      }
      assert.equal((await readAll(await d.reader('/rd/f', { offset: data.length }))).length, 0);
      await assert.rejects(d.reader('/rd/f', { offset: data.length + 1 }), hasCode('STORAGE_INVALID_OFFSET', dn));
      await assert.rejects(d.reader('/rd/f', { offset: -1 }), hasCode('STORAGE_INVALID_OFFSET', dn));
      await d.putContent('/rd/empty', Buffer.alloc(0));
      assert.equal((await readAll(await d.reader('/rd/empty', { offset: 0 }))).length, 0);
      await assert.rejects(d.reader('/rd/empty', { offset: 1 }), hasCode('STORAGE_INVALID_OFFSET', dn));
      await assert.rejects(d.reader('/rd/missing'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      await assert.rejects(d.reader('/rd'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
    });

    test('reader with length ends after length bytes (or at the end of the file); a bad length is refused', async (d, dn) => {
      const data = randomBytes(5 * 1024 * 1024 + 7);   // large enough for the filesystem driver's direct reads
      await d.putContent('/rl/f', data);
      for (const [off, len] of [[0, 0], [0, 1], [5, 1_000_000], [4096, 2 * 1024 * 1024], [3 * 1024 * 1024 + 1, 10 * 1024 * 1024], [data.length, 5]]) {
        const got = await readAll(await d.reader('/rl/f', { offset: off, length: len }));
        assert.ok(got.equals(data.subarray(off, off + len)), `offset ${off} length ${len}: ${got.length} bytes`);
      }
      await assert.rejects(d.reader('/rl/f', { length: -1 }), hasCode('STORAGE_INVALID_OFFSET', dn));
      await assert.rejects(d.reader('/rl/f', { length: 1.5 }), hasCode('STORAGE_INVALID_OFFSET', dn));
      // The span is checked before the file is looked up, in every driver alike (base.ts readSpan).
      await assert.rejects(d.reader('/rl/missing', { length: -1 }), hasCode('STORAGE_INVALID_OFFSET', dn));
      await assert.rejects(d.reader('/rl/missing', { offset: -1 }), hasCode('STORAGE_INVALID_OFFSET', dn));
    });

    test('writer: content is visible after commit, size counts the bytes', async (d) => {
      const w = await d.writer('/wr/a/b/data');
      assert.equal(w.size, 0);
      await pipeline(Readable.from([Buffer.from('hello '), Buffer.from('world')]), w.stream);
      assert.equal(w.size, 11);
      await w.commit();
      assert.equal((await d.getContent('/wr/a/b/data')).toString(), 'hello world');
      assert.equal((await readAll(await d.reader('/wr/a/b/data', { offset: 6 }))).toString(), 'world');
      const st = await d.stat('/wr/a/b/data');
      assert.equal(st.size, 11);
      assert.equal(st.isDir, false);
      await w.cancel();   // after commit: no-op
      assert.equal((await d.getContent('/wr/a/b/data')).toString(), 'hello world');
    });

    test('writer: commit without ending the stream ends it; an empty commit makes an empty file', async (d) => {
      const w = await d.writer('/wr2/f');
      w.stream.write(Buffer.from('abc'));
      await w.commit();
      assert.equal((await d.getContent('/wr2/f')).toString(), 'abc');
      const e = await d.writer('/wr2/empty');
      await e.commit();
      assert.equal((await d.stat('/wr2/empty')).size, 0);
    });

    test('writer: append continues across writers and size includes prior content', async (d) => {
      const w1 = await d.writer('/ap/data', { append: true });
      assert.equal(w1.size, 0, 'append to a missing file starts at 0');
      await pipeline(Readable.from([Buffer.from('one,')]), w1.stream);
      await w1.commit();
      const w2 = await d.writer('/ap/data', { append: true });
      assert.equal(w2.size, 4);
      await pipeline(Readable.from([Buffer.from('two,'), Buffer.from('three')]), w2.stream);
      assert.equal(w2.size, 13);
      await w2.commit();
      assert.equal((await d.getContent('/ap/data')).toString(), 'one,two,three');
      const w3 = await d.writer('/ap/data');
      assert.equal(w3.size, 0, 'without append the writer starts over');
      await pipeline(Readable.from([Buffer.from('new')]), w3.stream);
      await w3.commit();
      assert.equal((await d.getContent('/ap/data')).toString(), 'new');
    });

    test('writer: close() then writer(append) continues across writers and processes; commit makes it visible', async (d) => {
      // close() is Distribution's Close (S3: the multipart upload stays open); drivers without it commit.
      const close = (w: FileWriter) => (w.close ? w.close() : w.commit());
      const h = createHash('sha256');
      let total = 0;
      for (const n of [3 * MiB, 7 * MiB, 10 * MiB + 1, 1, 0, 6 * MiB]) {
        const piece = randomBytes(n);
        const w = await d.writer('/cl/data', { append: true });
        assert.equal(w.size, total, `before appending ${n} bytes`);
        await pipeline(Readable.from(n ? [piece] : []), w.stream);
        await close(w);
        total += n;
        h.update(piece);
        assert.equal((await d.stat('/cl/data', { pending: true })).size, total, `after appending ${n} bytes`);
      }
      const w = await d.writer('/cl/data', { append: true });
      assert.equal(w.size, total);
      await w.commit();
      assert.equal((await d.stat('/cl/data')).size, total);
      assert.equal((await d.stat('/cl/data', { pending: true })).pending ?? false, false, 'nothing pending after commit');
      assert.deepEqual(await sha256Of(await d.reader('/cl/data')), { hex: h.digest('hex'), size: total });
    });

    test('writer: delete() of its directory discards a closed writer, leaving nothing behind', async (d, dn) => {
      const w = await d.writer('/cld/u/data', { append: true });
      await pipeline(Readable.from([randomBytes(12 * MiB)]), w.stream);
      await (w.close ? w.close() : w.commit());
      await d.putContent('/cld/u/startedat', Buffer.from('now'));
      await d.delete('/cld/u');
      await assert.rejects(d.stat('/cld/u/data', { pending: true }), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      const again = await d.writer('/cld/u/data', { append: true });
      assert.equal(again.size, 0, 'a new writer starts empty');
      await again.cancel();
    });

    test('writer: cancel removes the file, is safe twice, and leaves nothing behind', async (d, dn) => {
      const w = await d.writer('/cn/data');
      await pipeline(Readable.from([randomBytes(100 * 1024)]), w.stream);
      await w.cancel();
      await w.cancel();
      await assert.rejects(d.stat('/cn/data'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      const mid = await d.writer('/cn/mid');
      mid.stream.write(Buffer.from('partial'));
      await mid.cancel();   // without ending the stream first
      await assert.rejects(d.stat('/cn/mid'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      await d.putContent('/cn/prior', Buffer.from('old'));
      const ap = await d.writer('/cn/prior', { append: true });
      ap.stream.write(Buffer.from('more'));
      await ap.cancel();   // like distribution: cancel deletes the file, prior content included
      await assert.rejects(d.stat('/cn/prior'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
    });

    test('writer: commit after an aborted pipeline keeps the bytes that arrived', async (d) => {
      const ac = new AbortController();
      const w = await d.writer('/ab/data', { append: true });
      const src = new Readable({ read() {} });
      const done = pipeline(src, w.stream, { signal: ac.signal });
      src.push(Buffer.alloc(4096, 1));
      src.push(Buffer.alloc(4096, 2));
      await waitUntil('the writer to accept 8192 bytes', () => w.size >= 8192, { intervalMs: 1, detail: () => `size ${w.size}` });
      ac.abort();
      await assert.rejects(done, isAbort);
      await w.commit();
      const got = await d.getContent('/ab/data');
      assert.equal(got.length, w.size, 'size equals what is stored');
      assert.ok(Buffer.concat([Buffer.alloc(4096, 1), Buffer.alloc(4096, 2)]).subarray(0, got.length).equals(got));
      const w2 = await d.writer('/ab/data', { append: true });
      assert.equal(w2.size, got.length, 'the upload can resume from there');
      await w2.cancel();
    });

    test('writer: 64 MiB streamed write and read back (hashed, not buffered by the test)', async (d) => {
      const total = 64 * MiB;
      const gen = generated(total);
      const w = await d.writer('/big/data');
      const h = createHash('sha256');
      const tap = new Transform({ transform(c: Buffer, _e, cb) { h.update(c); cb(null, c); } });
      try {
        await pipeline(gen.stream(), tap, w.stream);
        await w.commit();
      } finally {
        await w.cancel();
      }
      assert.equal(h.digest('hex'), gen.digest());
      assert.equal(w.size, total);
      assert.equal((await d.stat('/big/data')).size, total);
      const back = await sha256Of(await d.reader('/big/data'));
      assert.deepEqual(back, { hex: gen.digest(), size: total });
      const off = 32 * MiB + 123;
      const tail = await sha256Of(await d.reader('/big/data', { offset: off }));
      assert.deepEqual(tail, { hex: gen.digest(off), size: total - off });
    });

    test('reader: aborting the signal stops the stream', async (d) => {
      await d.putContent('/rab/f', randomBytes(4 * MiB));
      const ac = new AbortController();
      const r = await d.reader('/rab/f', { signal: ac.signal });
      await assert.rejects(async () => {
        for await (const _c of r) ac.abort();
      }, isAbort);
      await assert.rejects(d.getContent('/rab/f', { signal: AbortSignal.abort() }), isAbort);
    });

    test('stat: files and directories', async (d, dn) => {
      const before = Date.now() - 2000;
      await d.putContent('/st/dir/file', Buffer.from('12345'));
      const f = await d.stat('/st/dir/file');
      assert.deepEqual({ path: f.path, size: f.size, isDir: f.isDir }, { path: '/st/dir/file', size: 5, isDir: false });
      assert.ok(f.modTime instanceof Date && f.modTime.getTime() >= before && f.modTime.getTime() <= Date.now() + 2000);
      for (const p of ['/st', '/st/dir']) {
        const s = await d.stat(p);
        assert.equal(s.isDir, true, p);
        assert.equal(s.path, p);
      }
      await assert.rejects(d.stat('/st/nope'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      await assert.rejects(d.stat('/st/dir/file/below'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
    });

    test('list: direct children as full paths, sorted; missing or file is PathNotFound', async (d, dn) => {
      for (const p of ['/ls/c', '/ls/a/x', '/ls/b', '/ls/a-b', '/ls/A']) await d.putContent(p, Buffer.from(p));
      assert.deepEqual(await d.list('/ls'), ['/ls/A', '/ls/a', '/ls/a-b', '/ls/b', '/ls/c']);
      assert.deepEqual(await d.list('/ls/a'), ['/ls/a/x']);
      assert.ok((await d.list('/')).includes('/ls'));
      await assert.rejects(d.list('/ls/missing'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      await assert.rejects(d.list('/ls/c'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      await d.delete('/ls/a/x');
      await assertEmptyDir(d, '/ls/a', 'deleting the only child leaves an empty directory');
    });

    test('move: creates parents, replaces the destination, source is gone', async (d, dn) => {
      await d.putContent('/mv/src', Buffer.from('payload'));
      await d.move('/mv/src', '/mv/new/deep/dst');
      assert.equal((await d.getContent('/mv/new/deep/dst')).toString(), 'payload');
      await assert.rejects(d.stat('/mv/src'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      await d.putContent('/mv/other', Buffer.from('replacement'));
      await d.move('/mv/other', '/mv/new/deep/dst');
      assert.equal((await d.getContent('/mv/new/deep/dst')).toString(), 'replacement');
      await assert.rejects(d.move('/mv/missing', '/mv/new/deep/dst'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      assert.equal((await d.getContent('/mv/new/deep/dst')).toString(), 'replacement', 'destination untouched');
      await assert.rejects(d.stat('/mv/missing'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
    });

    test('move: a committed writer file into place (the upload commit path)', async (d) => {
      const w = await d.writer('/mvw/_uploads/u1/data');
      await pipeline(Readable.from([Buffer.from('blob bytes')]), w.stream);
      await w.commit();
      await d.move('/mvw/_uploads/u1/data', '/mvw/blobs/sha256/ab/abcd/data');
      assert.equal((await d.getContent('/mvw/blobs/sha256/ab/abcd/data')).toString(), 'blob bytes');
      await assertEmptyDir(d, '/mvw/_uploads/u1', 'the upload directory is empty');
    });

    test('delete: files, recursive directories, missing is PathNotFound', async (d, dn) => {
      for (const p of ['/del/a/b/c/1', '/del/a/b/2', '/del/a/3', '/del/keep/4', '/del/a-sibling']) {
        await d.putContent(p, Buffer.from(p));
      }
      await d.delete('/del/a/3');
      await assert.rejects(d.stat('/del/a/3'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      assert.equal((await d.stat('/del/a')).isDir, true, 'parent stays');
      await d.delete('/del/a');
      for (const p of ['/del/a', '/del/a/b', '/del/a/b/c/1', '/del/a/b/2']) {
        await assert.rejects(d.stat(p), hasCode('STORAGE_PATH_NOT_FOUND', dn), p);
      }
      assert.deepEqual(await d.list('/del'), ['/del/a-sibling', '/del/keep']);
      await assert.rejects(d.delete('/del/a'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      await assert.rejects(d.delete('/nowhere/x'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
    });

    test('walk: depth-first, siblings sorted, subtree before the next sibling; startAfter', async (d, dn) => {
      for (const p of ['/w/a/x', '/w/a/y/z', '/w/a-b', '/w/b', '/w/B']) await d.putContent(p, Buffer.from(p));
      const all = async (p: string, startAfter?: string) => {
        const out: FileInfo[] = [];
        for await (const fi of d.walk(p, { startAfter })) out.push(fi);
        return out;
      };
      const order = ['/w/B', '/w/a', '/w/a/x', '/w/a/y', '/w/a/y/z', '/w/a-b', '/w/b'];
      const got = await all('/w');
      assert.deepEqual(got.map((f) => f.path), order);
      assert.deepEqual(got.map((f) => f.isDir), [false, true, false, true, false, false, false]);
      assert.equal(got[2].size, '/w/a/x'.length);
      const paths = async (s: string) => (await all('/w', s)).map((f) => f.path);
      assert.deepEqual(await paths('/w/a'), order.slice(2));
      assert.deepEqual(await paths('/w/a/x'), order.slice(3));
      assert.deepEqual(await paths('/w/a/y/z'), order.slice(5));
      assert.deepEqual(await paths('/w/a/m'), order.slice(2), 'a bound that does not exist');
      assert.deepEqual(await paths('/v'), order);
      assert.deepEqual(await paths('/w/zzz'), []);
      assert.deepEqual((await all('/')).map((f) => f.path), ['/w', ...order]);
      for await (const _fi of d.walk('/w')) break;   // early stop is clean
      await assert.rejects(all('/w/missing'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
      await assert.rejects(all('/w/b'), hasCode('STORAGE_PATH_NOT_FOUND', dn));
    });

    test('invalid paths are rejected before the driver sees them', async (d, dn) => {
      const bad = [
        '', 'a', 'a/b', './a', '/a/../b', '/..', '/a/.', '/a/./b', '/a//b', '/a/', '//', '/a b', '/a%2e',
        '/a%20b', '/a\0b', '/a\\b', '/ä', '/a:b', '/a?b', '/a*b', '/' + 'x'.repeat(256),
        '/' + 'abcdefgh/'.repeat(460) + 'z',
      ];
      const inv = hasCode('STORAGE_INVALID_PATH', dn);
      for (const p of bad) {
        const m = JSON.stringify(p.slice(0, 40));
        await assert.rejects(d.getContent(p), inv, m);
        await assert.rejects(d.putContent(p, Buffer.from('x')), inv, m);
        await assert.rejects(d.reader(p), inv, m);
        await assert.rejects(d.writer(p), inv, m);
        await assert.rejects(d.stat(p), inv, m);
        await assert.rejects(d.list(p), inv, m);
        await assert.rejects(d.move(p, '/ok'), inv, m);
        await assert.rejects(d.move('/ok', p), inv, m);
        await assert.rejects(d.delete(p), inv, m);
        await assert.rejects(d.redirectURL(p, 'GET'), inv, m);
        await assert.rejects(async () => { for await (const _ of d.walk(p)) { /* none */ } }, inv, m);
      }
      for (const op of [() => d.getContent('/'), () => d.putContent('/', Buffer.from('x')), () => d.delete('/'),
        () => d.stat('/'), () => d.writer('/'), () => d.reader('/')]) {
        await assert.rejects(op(), inv, 'root is only for list and walk');
      }
      // Names with dots, dashes and underscores are fine; "..." is a name, not a parent reference.
      await d.putContent('/ok._-/A.b_c-d/.../_x', Buffer.from('fine'));
      assert.equal((await d.getContent('/ok._-/A.b_c-d/.../_x')).toString(), 'fine');
      assert.deepEqual(await visible(d), ['/ok._-', '/ok._-/A.b_c-d', '/ok._-/A.b_c-d/...', '/ok._-/A.b_c-d/.../_x']);
    });

    test('redirectURL is null or a URL; errors carry the driver name', async (d, dn) => {
      await d.putContent('/rx/f', Buffer.from('x'));
      const u = await d.redirectURL('/rx/f', 'GET');
      assert.ok(u === null || /^https?:\/\//.test(u));
      await assert.rejects(d.stat('/rx/none'), (err: Thrown) => err?.driver === dn && err?.path === '/rx/none');
      assert.ok(dn.length > 0);
    });
  });
}
