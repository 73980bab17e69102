// The notification journal on a real temp dir: durable appends in order, offsets across reopen,
// torn-line recovery, countAfter, and compaction that never loses a concurrent append.
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileJournal, MemoryJournal } from '../../src/registry/notify/journal.js';

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
  assert.equal(j.offset('a'), 0);
  assert.deepEqual(JSON.parse(await readFile(join(dir, 'offsets.json'), 'utf8')), {});
});

test('memory journal: positions are entries; compaction when caught up', async () => {
  const j = new MemoryJournal();
  await j.append([b('x'), b('y')]);
  assert.deepEqual((await j.read(1, 10)).map((e) => [e.line.toString(), e.end]), [['y', 2]]);
  await j.setOffset('a', 2);
  await j.compactIfIdle(() => j.offset('a') === j.end());
  assert.equal(j.end(), 0);
  assert.equal(j.offset('a'), 0);
});
