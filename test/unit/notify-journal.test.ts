// The notification journal on a real temp dir: durable appends in order, offsets across reopen,
// torn-line recovery, countAfter, compaction that never loses a concurrent append, and the bounds (size,
// age) that drop the oldest entries and report each reader's loss.
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cutIndex, FileJournal, MemoryJournal } from '../../src/registry/notify/journal.js';
import { waitUntil } from '../support/wait.js';

const b = (s: string) => Buffer.from(s);
const texts = async (j: { read(f: number, m: number): Promise<{ line: Buffer }[]> }, from = 0) =>
  (await j.read(from, 1000)).map((e) => e.line.toString());

async function tempDir(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-journal-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('file journal: ordered appends, offsets and entries survive a reopen', async (t) => {
  const dir = await tempDir(t);
  const j = await FileJournal.open(dir);
  await Promise.all([j.append([b('{"n":1}')]), j.append([b('{"n":2}'), b('{"n":3}')])]);
  assert.deepEqual(await texts(j), ['{"n":1}', '{"n":2}', '{"n":3}']);
  const [first] = await j.read(0, 1);
  await j.setOffset('a', first.end);
  assert.equal(j.countAfter(j.offset('a')), 2);
  assert.equal(j.countAfter(0), 3);
  await j.close();
  assert.equal(await readFile(join(dir, 'events.jsonl'), 'utf8'), '{"n":1}\n{"n":2}\n{"n":3}\n');

  const k = await FileJournal.open(dir);
  t.after(() => k.close());
  assert.equal(k.offset('a'), first.end);
  assert.equal(k.offset('b'), 0);
  assert.equal(k.countAfter(k.offset('a')), 2);
  assert.deepEqual(await texts(k, k.offset('a')), ['{"n":2}', '{"n":3}']);
});

test('file journal: a torn last line is cut, offsets past the end are reset', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'events.jsonl'), '{"n":1}\n');
  await appendFile(join(dir, 'events.jsonl'), '{"n":2');
  await writeFile(join(dir, 'offsets.json'), JSON.stringify({ a: 8, b: 999 }));
  const j = await FileJournal.open(dir);
  t.after(() => j.close());
  assert.equal(j.end(), 8);
  assert.deepEqual([j.offset('a'), j.offset('b')], [8, 0]);
  await j.append([b('{"n":3}')]);
  assert.deepEqual(await texts(j), ['{"n":1}', '{"n":3}']);
});

test('file journal: compaction only when caught up, never loses a concurrent append', async (t) => {
  const dir = await tempDir(t);
  const j = await FileJournal.open(dir);
  t.after(() => j.close());
  await j.append([b('1'), b('2')]);
  await j.compactIfIdle(() => false, 0);
  assert.equal(j.countAfter(0), 2);
  await j.compactIfIdle(() => true, 1 << 20);   // below the size threshold
  assert.equal(j.countAfter(0), 2);
  await j.setOffset('a', j.end());
  const compaction = j.compactIfIdle(() => j.offset('a') === j.end(), 0);
  const late = j.append([b('3')]);               // queued behind the compaction
  await Promise.all([compaction, late]);
  assert.deepEqual(await texts(j), ['3']);
  assert.deepEqual(await texts(j, j.offset('a')), ['3'], 'positions only grow: the reader is before the new entry');
  assert.equal(j.countAfter(j.offset('a')), 1);
  assert.deepEqual(JSON.parse(await readFile(join(dir, 'offsets.json'), 'utf8')), {});
  assert.equal(await readFile(join(dir, 'events.jsonl'), 'utf8'), '3\n');
});

test('memory journal: positions are entries; compaction when caught up', async () => {
  const j = new MemoryJournal();
  await j.append([b('x'), b('y')]);
  assert.deepEqual((await j.read(1, 10)).map((e) => [e.line.toString(), e.end]), [['y', 2]]);
  await j.setOffset('a', 2);
  await j.compactIfIdle(() => j.offset('a') === j.end());
  assert.equal(j.end(), 2, 'positions only grow');
  assert.equal(j.offset('a'), 2);
  assert.equal(j.countAfter(0), 0);
});

test('bounds: cutIndex keeps the newest entries within maxBytes (down to 3/4, never the last one) and maxAge', () => {
  const ends = [10, 20, 30, 40, 50];
  assert.deepEqual(cutIndex(0, ends, [0, 0, 0, 0, 0], { maxBytes: 100 }, 0), { index: 0, reason: 'maxage' }, 'within bounds');
  assert.deepEqual(cutIndex(0, ends, [0, 0, 0, 0, 0], { maxBytes: 40 }, 0), { index: 2, reason: 'maxsize' }, '50 > 40: down to 30');
  assert.deepEqual(cutIndex(0, ends, [1, 2, 3, 4, 5], { maxAgeMs: 10 }, 13), { index: 2, reason: 'maxage' });
  assert.deepEqual(cutIndex(0, ends, [1, 2, 3, 4, 5], { maxAgeMs: 1 }, 100), { index: 5, reason: 'maxage' }, 'all aged out');
  assert.deepEqual(cutIndex(0, [1000], [0], { maxBytes: 10 }, 0), { index: 0, reason: 'maxage' }, 'one entry over the bound stays');
});

test('file journal: past maxBytes the oldest entries go, each reader\'s loss is reported, positions stay valid', async (t) => {
  const dir = await tempDir(t);
  const drops: [Record<string, number>, string][] = [];
  const j = await FileJournal.open(dir, { maxBytes: 70, readers: ['a', 'b'], onDrop: (lost, reason) => drops.push([Object.fromEntries(lost), reason]) });
  t.after(() => j.close());
  for (let i = 0; i < 5; i++) await j.append([b(`{"n":${i}}1234`)]);   // 12 bytes each
  const [first] = await j.read(0, 1);
  await j.setOffset('a', first.end);                                   // a has read one entry
  await j.append([b('{"n":5}1234')]);                                   // 72 > 70: down to <= 52
  await waitUntil('the journal to be cut (right after the append is acknowledged)', () => drops.length > 0);
  const kept = ['{"n":2}1234', '{"n":3}1234', '{"n":4}1234', '{"n":5}1234'];
  assert.deepEqual(await texts(j, j.offset('b')), kept);
  assert.equal(j.countAfter(j.offset('a')), 4);
  assert.ok(j.offset('a') > first.end, 'a reader behind the cut is moved to the oldest kept entry');
  assert.equal(drops.length, 1);
  assert.deepEqual(drops[0], [{ a: 1, b: 2 }, 'maxsize']);
  assert.equal(await readFile(join(dir, 'events.jsonl'), 'utf8'), kept.map((l) => `${l}\n`).join(''));
  assert.deepEqual(JSON.parse(await readFile(join(dir, 'offsets.json'), 'utf8')), { a: 0 });
  // A stale reader position (a batch read before the cut) is harmless.
  await j.setOffset('a', first.end);
  assert.equal(j.countAfter(j.offset('a')), 4);
  await j.setOffset('a', j.end());
  await j.close();
  const k = await FileJournal.open(dir);
  t.after(() => k.close());
  assert.equal(k.countAfter(k.offset('a')), 0, 'offsets stored for the rewritten file');
  assert.equal(k.countAfter(k.offset('b')), 4);
});

test('file journal: expire() drops entries older than maxAge even when nobody appends', async (t) => {
  const dir = await tempDir(t);
  let now = 1_000_000;
  const drops: number[] = [];
  const j = await FileJournal.open(dir, { maxAgeMs: 1000, readers: ['a'], now: () => now, onDrop: (lost) => drops.push(lost.get('a') ?? 0) });
  t.after(() => j.close());
  await j.append([b('old1'), b('old2')]);
  now += 500;
  await j.append([b('new')]);
  now += 700;
  await j.expire();
  assert.deepEqual(await texts(j, j.offset('a')), ['new']);
  assert.deepEqual(drops, [2]);
});

test('memory journal: bounded the same way', async () => {
  const drops: number[] = [];
  const j = new MemoryJournal({ maxBytes: 10, readers: ['a'], onDrop: (lost) => drops.push(lost.get('a') ?? 0) });
  for (const x of ['aaaa', 'bbbb', 'cccc']) await j.append([b(x)]);   // synchronous bound
  assert.deepEqual(await texts(j, j.offset('a')), ['cccc'], '12 > 10: down to <= 7');
  assert.deepEqual(drops, [2]);
});
