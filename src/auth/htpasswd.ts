// htpasswd files: parse (pure) and keep a user table that is re-read and REPLACED when the file changes.
// Every line format nginx accepts on glibc works (password-hashes.ts); any other line is skipped and reported
// with its number, never silently, and one bad line never refuses the whole file. Must not log hashes or passwords.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import { classify, dummyFor, type HashKind } from './password-hashes.js';

export { bcryptBackend, defaultVerifier, type HashKind, type PasswordVerifier } from './password-hashes.js';

export interface HtpasswdEntry {
  user: string;
  kind: HashKind;
  hash: string;
  /** 1-based line number in the file. */
  line: number;
}

export interface HtpasswdProblem {
  line: number;
  message: string;
}

export interface ParsedHtpasswd {
  /** Valid entries. For a duplicated user the FIRST entry wins (as Apache does), and the duplicate is a problem. */
  users: Map<string, HtpasswdEntry>;
  /** Lines skipped (their users are refused). */
  problems: HtpasswdProblem[];
  /** Lines accepted with a caveat ({PLAIN}, DES crypt). */
  warnings: HtpasswdProblem[];
}

/**
 * Parses htpasswd text. `user:hash[:ignored…]` per line; `#` comments and blank lines are skipped,
 * surrounding whitespace and CR are trimmed. `file` is only used by callers for messages.
 */
export function parseHtpasswd(text: string, _file = ''): ParsedHtpasswd {
  const users = new Map<string, HtpasswdEntry>();
  const problems: HtpasswdProblem[] = [];
  const warnings: HtpasswdProblem[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((raw, i) => {
    const line = i + 1;
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const colon = l.indexOf(':');
    if (colon < 0) return problems.push({ line, message: 'malformed line: expected user:hash' });
    const user = l.slice(0, colon);
    // Apache and nginx read the hash up to the next ':'; no supported hash contains one.
    const hash = l.slice(colon + 1).split(':')[0].trim();
    if (user === '') return problems.push({ line, message: 'malformed line: empty user name' });
    if (hash === '') return problems.push({ line, message: `malformed line: empty hash for user "${user}"` });
    const c = classify(hash);
    if ('problem' in c) return problems.push({ line, message: `${c.problem} (user "${user}")` });
    const first = users.get(user);
    if (first) return problems.push({ line, message: `duplicate user "${user}" (first defined on line ${first.line})` });
    if (c.warning) warnings.push({ line, message: `${c.warning} (user "${user}")` });
    users.set(user, { user, kind: c.kind, hash, line });
  });
  return { users, problems, warnings };
}

/** A dummy of the most common kind (and bcrypt cost) in the table; bcrypt cost 10 for an empty table. */
export function dummyEntry(users: Map<string, HtpasswdEntry>): { kind: HashKind; hash: string } {
  return dummyFor(users.values());
}

// ---- the live file ------------------------------------------------------------------------------

export class HtpasswdError extends Error {
  readonly code = 'BERTH_ERR_HTPASSWD';
  constructor(readonly file: string, readonly problems: HtpasswdProblem[], options?: { cause?: unknown }) {
    super(problems.map((p) => `${file}:${p.line}  ${p.message}`).join('\n'), options);
    this.name = 'HtpasswdError';
  }
}

export interface HtpasswdTable {
  readonly users: ReadonlyMap<string, HtpasswdEntry>;
  readonly dummy: { kind: HashKind; hash: string };
  /** Increments on every replacement. */
  readonly generation: number;
  /** True while the file is missing, not a regular file or unreadable: nobody is let in (fail closed). */
  readonly closed: boolean;
}

export interface HtpasswdFileOptions {
  log: Logger;
  /** Minimum ms between two stats of the file; 0 (default) = stat on every `current()` (concurrent calls share one). */
  checkIntervalMs?: number;
  /** Monotonic-ish clock for checkIntervalMs (tests). */
  now?: () => number;
}

interface Signature { ino: number; size: number; mtimeMs: number; ctimeMs: number }

/** Within this many ms of the file's mtime, a same-stat rewrite is possible: compare content hashes. */
const RACY_MS = 2000;

/** Errors that say nothing about the file (the process is out of descriptors or memory): keep the table, retry. */
const TRANSIENT = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EINTR', 'ENOMEM']);

/**
 * The user table of one htpasswd file. `load()` skips bad lines, each with a `file:line` warning (their users
 * are refused), and fails only when the file cannot be read.
 * Afterwards, a changed file (ino/size/mtime/ctime, or content hash while the mtime is recent) is
 * re-parsed and its valid entries REPLACE the table, so removed users are refused at once; invalid
 * lines are logged at error level and their users refused until fixed. A file that is gone, replaced by
 * a directory or unreadable FAILS CLOSED, as nginx does: an empty, `closed` table (one error line) until
 * a readable file appears again. Only transient errors (EMFILE, ENFILE, …) keep the previous table.
 */
export class HtpasswdFile {
  private table!: HtpasswdTable;
  private sig!: Signature;
  private contentHash = '';
  private readAtWallMs = 0;
  private lastCheck = -Infinity;
  private checking: Promise<HtpasswdTable> | null = null;
  private listeners: ((t: HtpasswdTable) => void)[] = [];
  private lastErrorCode: string | undefined;

  private constructor(readonly path: string, private readonly opts: HtpasswdFileOptions) {}

  /** Reads and parses `path` (bad lines are skipped, one warning each); rejects with the fs error. */
  static async load(path: string, opts: HtpasswdFileOptions): Promise<HtpasswdFile> {
    const f = new HtpasswdFile(path, opts);
    const st = await stat(path);
    const text = await readFile(path, 'utf8');
    const parsed = parseHtpasswd(text, path);
    reportLines(opts.log, path, parsed);
    f.install(st, text, parsed, 1);
    return f;
  }

  /** The table as of the last check (no I/O). */
  get latest(): HtpasswdTable {
    return this.table;
  }

  /** Called with the new table after every replacement (e.g. to flush a credential cache). */
  onReload(fn: (t: HtpasswdTable) => void): void {
    this.listeners.push(fn);
  }

  /** The current table, after checking the file for changes (see checkIntervalMs). */
  current(): Promise<HtpasswdTable> {
    if (this.checking) return this.checking;
    const now = (this.opts.now ?? Date.now)();
    if (now - this.lastCheck < (this.opts.checkIntervalMs ?? 0)) return Promise.resolve(this.table);
    this.lastCheck = now;
    this.checking = this.check().finally(() => { this.checking = null; });
    return this.checking;
  }

  close(): void {
    this.listeners = [];
  }

  private install(st: Signature, text: string, parsed: ParsedHtpasswd, generation: number): void {
    this.sig = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
    this.contentHash = createHash('sha256').update(text).digest('hex');
    this.readAtWallMs = Date.now();
    this.table = { users: parsed.users, dummy: dummyEntry(parsed.users), generation, closed: false };
  }

  /** Nobody is let in until the file is readable again; the next successful stat re-reads it. */
  private failClosed(why: string, err?: unknown): void {
    if (!this.table.closed) {
      this.opts.log.error({ file: this.path, reason: why, ...(err ? { err } : {}) },
        'htpasswd file unusable; refusing every request until a valid file appears');
    }
    this.sig = { ino: -1, size: -1, mtimeMs: -1, ctimeMs: -1 };
    this.contentHash = '';
    if (this.table.closed) return;
    this.table = { users: new Map(), dummy: this.table.dummy, generation: this.table.generation + 1, closed: true };
    for (const fn of this.listeners) fn(this.table);
  }

  private async check(): Promise<HtpasswdTable> {
    const log = this.opts.log;
    try {
      const st = await stat(this.path);
      if (!st.isFile()) {
        this.failClosed(st.isDirectory() ? 'a directory' : 'not a regular file');
        return this.table;
      }
      const s = this.sig;
      const same = st.ino === s.ino && st.size === s.size && st.mtimeMs === s.mtimeMs && st.ctimeMs === s.ctimeMs;
      if (same && this.readAtWallMs - st.mtimeMs > RACY_MS) return this.table;
      const text = await readFile(this.path, 'utf8');
      const hash = createHash('sha256').update(text).digest('hex');
      this.lastErrorCode = undefined;
      if (hash === this.contentHash) {
        this.sig = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
        this.readAtWallMs = Date.now();
        return this.table;
      }
      const parsed = parseHtpasswd(text, this.path);
      reportLines(log, this.path, parsed);
      const wasClosed = this.table.closed;
      this.install(st, text, parsed, this.table.generation + 1);
      if (wasClosed) {
        log.warn({ file: this.path, users: parsed.users.size, problems: parsed.problems.length ? parsed.problems : undefined },
          'htpasswd file is back; authentication resumes');
      } else if (parsed.problems.length) {
        log.error({ file: this.path, problems: parsed.problems, users: parsed.users.size },
          'htpasswd reloaded with invalid lines; those users are refused until the lines are fixed');
      } else {
        log.info({ file: this.path, users: parsed.users.size }, 'htpasswd reloaded');
      }
      for (const fn of this.listeners) fn(this.table);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      if (!TRANSIENT.has(code)) {
        this.failClosed(code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : code === 'EISDIR' ? 'a directory' : `unreadable (${code})`, err);
      } else if (code !== this.lastErrorCode) {
        log.error({ file: this.path, err }, 'htpasswd reload failed for lack of resources; keeping the previous user table');
        this.lastErrorCode = code;
      }
    }
    return this.table;
  }
}

/** One `warn` line per skipped or caveated line, named `file:line` (never the hash). */
function reportLines(log: Logger, file: string, parsed: ParsedHtpasswd): void {
  for (const p of parsed.problems) log.warn({ file, line: p.line }, `${file}:${p.line}: ${p.message}; line skipped`);
  for (const w of parsed.warnings) log.warn({ file, line: w.line }, `${file}:${w.line}: ${w.message}`);
}
