// The durable event log every endpoint reads from: JSON lines appended and fdatasync'd (group
// commit) before append() resolves, plus each endpoint's delivered offset. A memory variant serves
// inmemory storage. It knows nothing about HTTP or endpoints' policies. It is bounded (issue 14, point 12):
// past `maxBytes`, or for entries older than `maxAgeMs`, the oldest entries are dropped and each reader's
// share reported through `onDrop`; the size bound never drops the newest entry.
import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export interface JournalEntry { line: Buffer; /** position just after this entry */ end: number }

/** Bounds of a journal (both optional: unbounded). */
export interface JournalLimits {
  /** Bytes (file) or line bytes (memory) kept; past it the oldest entries go, down to 3/4 of it. */
  maxBytes?: number;
  /** Entries older than this (ms since they were appended) are dropped. */
  maxAgeMs?: number;
  /** The readers whose losses are reported (the enabled endpoints). */
  readers?: readonly string[];
  /** Called after entries were dropped: per reader, how many it had not read yet. */
  onDrop?: (lost: ReadonlyMap<string, number>, reason: 'maxsize' | 'maxage') => void;
  /** Injectable clock (tests). */
  now?: () => number;
}

export interface Journal {
  /** Appends entries in order; resolves once they are durable (fsync'd for the file journal). */
  append(lines: Buffer[]): Promise<void>;
  /** Durable entries starting at position `from` (or the oldest kept one, if it was dropped), at most `max`. */
  read(from: number, max: number): Promise<JournalEntry[]>;
  /** Position after the last durable entry. Positions only grow while the journal is open. */
  end(): number;
  /** Number of durable entries after position `from`. */
  countAfter(from: number): number;
  /** A reader's position: never before the oldest kept entry. */
  offset(endpoint: string): number;
  /** Records that `endpoint` has everything before `pos`. */
  setOffset(endpoint: string, pos: number): Promise<void>;
  /** Empties the journal; every reader is then at the end. */
  compact(): Promise<void>;
  /** Empties the journal when it holds at least `minBytes` (file) and `caughtUp()` says every reader
   *  has everything, checked while no append is in flight. Appends wait for it. */
  compactIfIdle(caughtUp: () => boolean, minBytes: number): Promise<void>;
  /** Drops entries past `maxAgeMs` (appends also do; this is for a journal nobody appends to). */
  expire(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where to cut so the bound holds: the index of the first entry kept (0: nothing to drop). `ends[i]` is
 * the end of entry i, `start` the start of entry 0, `times[i]` when it was appended. The size bound never
 * cuts the last entry; the age bound may cut them all.
 */
export function cutIndex(start: number, ends: readonly number[], times: readonly number[], l: JournalLimits, now: number): { index: number; reason: 'maxsize' | 'maxage' } {
  const n = ends.length;
  let index = 0;
  let reason: 'maxsize' | 'maxage' = 'maxage';
  if (l.maxAgeMs !== undefined) {
    const oldest = now - l.maxAgeMs;
    while (index < n && times[index] < oldest) index++;
  }
  const size = n ? ends[n - 1] - start : 0;
  if (l.maxBytes !== undefined && size > l.maxBytes) {
    const target = ends[n - 1] - Math.floor(l.maxBytes * 3 / 4);   // keep entries starting at or after it
    let i = index;
    while (i < n - 1 && (i === 0 ? start : ends[i - 1]) < target) i++;
    if (i > index) { index = i; reason = 'maxsize'; }
  }
  return { index, reason };
}

/** Per reader, the entries in [offset, newStart) it had not read. */
function losses(readers: readonly string[], offset: (r: string) => number, ends: readonly number[], cut: number): Map<string, number> {
  const lost = new Map<string, number>();
  for (const r of readers) {
    const from = offset(r);
    let k = 0;
    for (let i = 0; i < cut; i++) if (ends[i] > from) k++;
    if (k > 0) lost.set(r, k);
  }
  return lost;
}

export class MemoryJournal implements Journal {
  private lines: Buffer[] = [];
  private times: number[] = [];
  /** Position of lines[0]; positions are entry counts since the journal was created. */
  private base = 0;
  private readonly offsets = new Map<string, number>();

  constructor(private readonly limits: JournalLimits = {}) {}

  async append(lines: Buffer[]): Promise<void> {
    const now = (this.limits.now ?? Date.now)();
    this.lines.push(...lines);
    for (const _ of lines) this.times.push(now);
    this.bound();
  }
  async read(from: number, max: number): Promise<JournalEntry[]> {
    const i = Math.max(0, from - this.base);
    return this.lines.slice(i, i + max).map((line, k) => ({ line, end: this.base + i + k + 1 }));
  }
  end(): number { return this.base + this.lines.length; }
  countAfter(from: number): number { return Math.max(0, this.end() - Math.max(from, this.base)); }
  offset(endpoint: string): number { return Math.max(this.offsets.get(endpoint) ?? 0, this.base); }
  async setOffset(endpoint: string, pos: number): Promise<void> { this.offsets.set(endpoint, pos); }
  async compact(): Promise<void> { this.drop(this.lines.length); }
  async compactIfIdle(caughtUp: () => boolean): Promise<void> { if (this.lines.length > 0 && caughtUp()) await this.compact(); }
  async expire(): Promise<void> { this.bound(); }
  async close(): Promise<void> {}

  private bound(): void {
    if (this.lines.length === 0) return;
    let at = 0;
    const ends = this.lines.map((l) => (at += l.length));
    const { index, reason } = cutIndex(0, ends, this.times, this.limits, (this.limits.now ?? Date.now)());
    if (index === 0) return;
    const positions = this.lines.slice(0, index).map((_, i) => this.base + i + 1);
    const lost = losses(this.limits.readers ?? [], (r) => this.offset(r), positions, index);
    this.drop(index);
    if (lost.size > 0) this.limits.onDrop?.(lost, reason);
  }

  private drop(n: number): void {
    this.lines = this.lines.slice(n);
    this.times = this.times.slice(n);
    this.base += n;
  }
}

interface Waiter { data: Buffer; resolve(): void; reject(err: unknown): void }

/**
 * `<dir>/events.jsonl` (one JSON event per line) and `<dir>/offsets.json` ({ endpoint: byte offset in the
 * file }). In memory, positions are `base` + the byte offset in the file, so they only grow: dropping the
 * oldest entries rewrites the file without them (tmp + fsync, offsets, rename) and raises `base`.
 */
export class FileJournal implements Journal {
  private size = 0;
  /** Position of the file's first byte (0 at open). */
  private base = 0;
  /** End position of every durable entry, ascending (for countAfter; 8 bytes per event), and its append time. */
  private ends: number[] = [];
  private times: number[] = [];
  private waiting: Waiter[] = [];
  private flushing = false;
  private offsets: Record<string, number> = {};
  private offsetWrite: Promise<void> = Promise.resolve();
  /** Reads in flight per file handle: a handle replaced by a rewrite is closed once its reads are done. */
  private readonly reading = new Map<FileHandle, number>();
  private readonly retired = new Set<FileHandle>();

  private constructor(private readonly dir: string, private fh: FileHandle, private readonly limits: JournalLimits) {}

  static async open(dir: string, limits: JournalLimits = {}): Promise<FileJournal> {
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'events.jsonl');
    await rm(`${file}.tmp`, { force: true });   // a rewrite that never got renamed
    const fh = await open(file, 'a+');
    const j = new FileJournal(dir, fh, limits);
    let size = (await fh.stat()).size;
    if (size > 0) {   // a torn last line (crash mid-write) was never acknowledged: cut it off
      const buf = Buffer.alloc(Math.min(size, 1 << 20));
      let pos = size;
      let cut = -1;
      while (pos > 0 && cut < 0) {
        const len = Math.min(buf.length, pos);
        pos -= len;
        await fh.read(buf, 0, len, pos);
        const nl = buf.subarray(0, len).lastIndexOf(0x0a);
        if (nl >= 0) cut = pos + nl + 1;
      }
      if (cut < 0) cut = 0;
      if (cut !== size) { await fh.truncate(cut); size = cut; }
    }
    j.size = size;
    for (let pos = 0; pos < size;) {
      const entries = await j.read(pos, 4096);
      for (const e of entries) { j.ends.push(e.end); j.times.push(appendedAt(e.line)); }
      pos = entries[entries.length - 1].end;
    }
    try {
      j.offsets = JSON.parse(await readFile(join(dir, 'offsets.json'), 'utf8')) as Record<string, number>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    // An offset must be an entry boundary (a crash mid-rewrite can leave offsets of the other file): else 0.
    const boundaries = new Set(j.ends);
    for (const [k, v] of Object.entries(j.offsets)) if (!(typeof v === 'number' && (v === 0 || boundaries.has(v)))) j.offsets[k] = 0;
    return j;
  }

  append(lines: Buffer[]): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push({ data: Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])), resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /** Group commit: one write + one fdatasync for everything queued meanwhile. Order is kept. */
  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.waiting.length) {
      const batch = this.waiting;
      this.waiting = [];
      const data = Buffer.concat(batch.map((w) => w.data));
      try {
        let done = 0;
        while (done < data.length) done += (await this.fh.write(data, done, data.length - done, this.size + done)).bytesWritten;
        await this.fh.datasync();
        const now = this.now();
        let at = this.base + this.size;
        for (const w of batch) {
          for (let nl = w.data.indexOf(0x0a); nl >= 0; nl = w.data.indexOf(0x0a, nl + 1)) { this.ends.push(at + nl + 1); this.times.push(now); }
          at += w.data.length;
        }
        this.size += data.length;
        for (const w of batch) w.resolve();
      } catch (err) {
        await this.fh.truncate(this.size).catch(() => undefined);
        for (const w of batch) w.reject(err);
      }
      // Bounded before the next batch; a failed rewrite leaves the journal as it was (retried next time).
      await this.bound().catch(() => undefined);
    }
    this.flushing = false;
  }

  async read(from: number, max: number): Promise<JournalEntry[]> {
    const { fh, base } = this;
    const size = this.size;
    this.reading.set(fh, (this.reading.get(fh) ?? 0) + 1);
    try {
      const out: JournalEntry[] = [];
      let pos = Math.max(from - base, 0);
      let chunk = 256 << 10;
      while (out.length < max && pos < size) {
        const len = Math.min(chunk, size - pos);
        const buf = Buffer.alloc(len);
        await fh.read(buf, 0, len, pos);
        let start = 0;
        for (let nl = buf.indexOf(0x0a, start); nl >= 0 && out.length < max; nl = buf.indexOf(0x0a, start)) {
          out.push({ line: buf.subarray(start, nl), end: base + pos + nl + 1 });
          start = nl + 1;
        }
        if (start === 0) { chunk *= 2; continue; }   // one entry longer than the chunk
        pos += start;
      }
      return out;
    } finally {
      const left = (this.reading.get(fh) ?? 1) - 1;
      if (left > 0) this.reading.set(fh, left);
      else {
        this.reading.delete(fh);
        if (this.retired.delete(fh)) await fh.close().catch(() => undefined);
      }
    }
  }

  end(): number { return this.base + this.size; }

  countAfter(from: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.ends[mid] <= from) lo = mid + 1; else hi = mid; }
    return this.ends.length - lo;
  }

  offset(endpoint: string): number { return Math.max(this.offsets[endpoint] ?? 0, this.base); }

  setOffset(endpoint: string, pos: number): Promise<void> {
    this.offsets[endpoint] = pos;
    return this.writeOffsets();
  }

  /** Serialised, atomic (tmp + rename), as positions in the file. Losing the newest offset only means
   *  redelivery (at least once). */
  private writeOffsets(): Promise<void> {
    return this.serial(() => this.storeOffsets(this.base));
  }

  private serial(f: () => Promise<void>): Promise<void> {
    this.offsetWrite = this.offsetWrite.catch(() => undefined).then(f);
    return this.offsetWrite;
  }

  private async storeOffsets(base: number): Promise<void> {
    const rel = Object.fromEntries(Object.entries(this.offsets).map(([k, v]) => [k, Math.max(0, v - base)]));
    const tmp = join(this.dir, 'offsets.json.tmp');
    await writeFile(tmp, JSON.stringify(rel));
    await rename(tmp, join(this.dir, 'offsets.json'));
  }

  async compact(): Promise<void> {
    // Truncate first: a crash before the offsets are rewritten leaves offsets > size, reset to 0 by open().
    await this.serial(async () => {
      await this.fh.truncate(0);
      this.base += this.size;
      this.size = 0;
      this.ends = [];
      this.times = [];
      this.offsets = {};
      await this.storeOffsets(this.base);
    });
  }

  async compactIfIdle(caughtUp: () => boolean, minBytes: number): Promise<void> {
    if (this.flushing || this.waiting.length > 0 || this.size === 0 || this.size < minBytes || !caughtUp()) return;
    await this.locked(() => this.compact());
  }

  async expire(): Promise<void> {
    if (this.limits.maxAgeMs === undefined) return;
    for (let i = 0; this.flushing && i < 1000; i++) await new Promise((r) => setImmediate(r));
    if (this.flushing) return;   // appends keep it busy: they bound the journal themselves
    await this.locked(() => this.bound());
  }

  /** Runs `f` with appends queued behind it. */
  private async locked(f: () => Promise<void>): Promise<void> {
    this.flushing = true;
    try {
      await f();
    } finally {
      this.flushing = false;
      if (this.waiting.length > 0) void this.flush();
    }
  }

  /** Drops what the limits say (only while appends are held). */
  private async bound(): Promise<void> {
    if (this.ends.length === 0) return;
    const { index, reason } = cutIndex(this.base, this.ends, this.times, this.limits, this.now());
    if (index === 0) return;
    const newBase = this.ends[index - 1];
    const oldBase = this.base;
    // The losses are counted and reported at the instant the cut becomes visible (base raised, in the same
    // synchronous step), not before the rewrite: a queue that delivered a batch and moved its offset while the
    // file was being copied must not be charged for it, and one whose POST is still in flight is charged and
    // takes back what it then delivers (queue.ts): both read offset() and the counter at one consistent moment.
    await this.rewriteFrom(newBase, () => {
      const lost = losses(this.limits.readers ?? [], (r) => Math.max(this.offsets[r] ?? 0, oldBase), this.ends, index);
      this.ends = this.ends.slice(index);
      this.times = this.times.slice(index);
      if (lost.size > 0) this.limits.onDrop?.(lost, reason);
    });
  }

  /** The file without everything before `newBase`: copy the rest to a tmp file, fsync, store offsets for
   *  it, rename it over events.jsonl. A crash before the rename leaves the old file, whose entries the new
   *  offsets cannot point into cleanly: open() resets them (redelivery, never a skip). */
  private async rewriteFrom(newBase: number, swapped: () => void): Promise<void> {
    const file = join(this.dir, 'events.jsonl');
    const tmp = await open(`${file}.tmp`, 'w+');
    try {
      const keep = this.size - (newBase - this.base);
      const buf = Buffer.alloc(Math.min(keep, 1 << 20));
      for (let done = 0; done < keep;) {
        const { bytesRead } = await this.fh.read(buf, 0, Math.min(buf.length, keep - done), newBase - this.base + done);
        if (bytesRead === 0) throw new Error('journal shrank during a rewrite');
        let w = 0;
        while (w < bytesRead) w += (await tmp.write(buf, w, bytesRead - w, done + w)).bytesWritten;
        done += bytesRead;
      }
      await tmp.datasync();
      await this.serial(async () => {
        await this.storeOffsets(newBase);
        await rename(`${file}.tmp`, file);
        const old = this.fh;
        this.fh = tmp;
        this.size = keep;
        this.base = newBase;
        swapped();
        if (this.reading.has(old)) this.retired.add(old);
        else await old.close().catch(() => undefined);
      });
    } catch (err) {
      if (this.fh !== tmp) {
        await tmp.close().catch(() => undefined);
        await rm(`${file}.tmp`, { force: true });
      }
      throw err;
    }
  }

  private now(): number { return (this.limits.now ?? Date.now)(); }

  async close(): Promise<void> {
    while (this.flushing) await new Promise((r) => setImmediate(r));
    await this.offsetWrite.catch(() => undefined);
    await this.fh.close();
  }
}

/** When an entry loaded at open was appended: its event's timestamp, else now (kept a full maxage). */
function appendedAt(line: Buffer): number {
  const m = /"timestamp":"([^"]+)"/.exec(line.subarray(0, 512).toString('utf8'));
  const t = m ? Date.parse(m[1]) : NaN;
  return Number.isFinite(t) ? t : Date.now();
}
