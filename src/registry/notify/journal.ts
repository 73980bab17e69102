// The durable event log every endpoint reads from: JSON lines appended and fdatasync'd (group
// commit) before append() resolves, plus each endpoint's delivered offset. A memory variant serves
// inmemory storage. It knows nothing about HTTP or endpoints' policies; it never drops an entry.
import { mkdir, open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export interface JournalEntry { line: Buffer; /** position just after this entry */ end: number }

export interface Journal {
  /** Appends entries in order; resolves once they are durable (fsync'd for the file journal). */
  append(lines: Buffer[]): Promise<void>;
  /** Durable entries starting at position `from`, at most `max`. */
  read(from: number, max: number): Promise<JournalEntry[]>;
  /** Position after the last durable entry. */
  end(): number;
  /** Number of durable entries after position `from`. */
  countAfter(from: number): number;
  offset(endpoint: string): number;
  /** Records that `endpoint` has everything before `pos`. */
  setOffset(endpoint: string, pos: number): Promise<void>;
  /** Empties the journal and every offset; only while nothing appends (startup). */
  compact(): Promise<void>;
  /** Empties the journal when it holds at least `minBytes` (file) and `caughtUp()` says every reader
   *  has everything, checked while no append is in flight. Appends wait for it. */
  compactIfIdle(caughtUp: () => boolean, minBytes: number): Promise<void>;
  close(): Promise<void>;
}

export class MemoryJournal implements Journal {
  private readonly lines: Buffer[] = [];
  private readonly offsets = new Map<string, number>();
  async append(lines: Buffer[]): Promise<void> { this.lines.push(...lines); }
  async read(from: number, max: number): Promise<JournalEntry[]> {
    return this.lines.slice(from, from + max).map((line, i) => ({ line, end: from + i + 1 }));
  }
  end(): number { return this.lines.length; }
  countAfter(from: number): number { return Math.max(0, this.lines.length - from); }
  offset(endpoint: string): number { return this.offsets.get(endpoint) ?? 0; }
  async setOffset(endpoint: string, pos: number): Promise<void> { this.offsets.set(endpoint, pos); }
  async compact(): Promise<void> { this.lines.length = 0; this.offsets.clear(); }
  async compactIfIdle(caughtUp: () => boolean): Promise<void> { if (this.lines.length > 0 && caughtUp()) await this.compact(); }
  async close(): Promise<void> {}
}

interface Waiter { data: Buffer; resolve(): void; reject(err: unknown): void }

/** `<dir>/events.jsonl` (one JSON event per line) and `<dir>/offsets.json` ({ endpoint: byte offset }). */
export class FileJournal implements Journal {
  private size = 0;
  /** End position of every durable entry, ascending (for countAfter; 8 bytes per event). */
  private ends: number[] = [];
  private waiting: Waiter[] = [];
  private flushing = false;
  private offsets: Record<string, number> = {};
  private offsetWrite: Promise<void> = Promise.resolve();

  private constructor(private readonly dir: string, private readonly fh: FileHandle) {}

  static async open(dir: string): Promise<FileJournal> {
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'events.jsonl');
    const fh = await open(file, 'a+');
    const j = new FileJournal(dir, fh);
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
      for (const e of entries) j.ends.push(e.end);
      pos = entries[entries.length - 1].end;
    }
    try {
      j.offsets = JSON.parse(await readFile(join(dir, 'offsets.json'), 'utf8')) as Record<string, number>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const [k, v] of Object.entries(j.offsets)) if (!(typeof v === 'number' && v >= 0 && v <= size)) j.offsets[k] = 0;
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
        let at = this.size;
        for (const w of batch) {
          for (let nl = w.data.indexOf(0x0a); nl >= 0; nl = w.data.indexOf(0x0a, nl + 1)) this.ends.push(at + nl + 1);
          at += w.data.length;
        }
        this.size += data.length;
        for (const w of batch) w.resolve();
      } catch (err) {
        await this.fh.truncate(this.size).catch(() => undefined);
        for (const w of batch) w.reject(err);
      }
    }
    this.flushing = false;
  }

  async read(from: number, max: number): Promise<JournalEntry[]> {
    const out: JournalEntry[] = [];
    let pos = from;
    let chunk = 256 << 10;
    while (out.length < max && pos < this.size) {
      const len = Math.min(chunk, this.size - pos);
      const buf = Buffer.alloc(len);
      await this.fh.read(buf, 0, len, pos);
      let start = 0;
      for (let nl = buf.indexOf(0x0a, start); nl >= 0 && out.length < max; nl = buf.indexOf(0x0a, start)) {
        out.push({ line: buf.subarray(start, nl), end: pos + nl + 1 });
        start = nl + 1;
      }
      if (start === 0) { chunk *= 2; continue; }   // one entry longer than the chunk
      pos += start;
    }
    return out;
  }

  end(): number { return this.size; }

  countAfter(from: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.ends[mid] <= from) lo = mid + 1; else hi = mid; }
    return this.ends.length - lo;
  }

  offset(endpoint: string): number { return this.offsets[endpoint] ?? 0; }

  setOffset(endpoint: string, pos: number): Promise<void> {
    this.offsets[endpoint] = pos;
    return this.writeOffsets();
  }

  /** Serialised, atomic (tmp + rename). Losing the newest offset only means redelivery (at least once). */
  private writeOffsets(): Promise<void> {
    this.offsetWrite = this.offsetWrite.catch(() => undefined).then(async () => {
      const tmp = join(this.dir, 'offsets.json.tmp');
      await writeFile(tmp, JSON.stringify(this.offsets));
      await rename(tmp, join(this.dir, 'offsets.json'));
    });
    return this.offsetWrite;
  }

  async compact(): Promise<void> {
    // Truncate first: a crash before the offsets are rewritten leaves offsets > size, clamped to 0 by open().
    await this.fh.truncate(0);
    this.size = 0;
    this.ends = [];
    this.offsets = {};
    await this.writeOffsets();
  }

  async compactIfIdle(caughtUp: () => boolean, minBytes: number): Promise<void> {
    if (this.flushing || this.waiting.length > 0 || this.size === 0 || this.size < minBytes || !caughtUp()) return;
    this.flushing = true;   // appends queue up behind the compaction
    try {
      await this.compact();
    } finally {
      this.flushing = false;
      if (this.waiting.length > 0) void this.flush();
    }
  }

  async close(): Promise<void> {
    while (this.flushing) await new Promise((r) => setImmediate(r));
    await this.offsetWrite.catch(() => undefined);
    await this.fh.close();
  }
}
