// `berth htpasswd add|remove|verify USER --file PATH`: manages an htpasswd file that Apache's tools
// (and nginx) can read too. Writes bcrypt ($2y$) only, rewrites atomically (temp file + rename) and
// keeps every other line, comment and line ending as it was. Never echoes or logs a password.
import { randomBytes } from 'node:crypto';
import { chown, lstat, mkdir, open, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultVerifier, parseHtpasswd } from '../auth/htpasswd.js';

export interface HtpasswdCommandIo {
  /** Password source: all of it with --password-stdin, else an echo-less prompt when it is a TTY. */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** Base for a relative --file. Default process.cwd(). */
  cwd?: string;
}

export const DEFAULT_BCRYPT_COST = 10;
const MAX_PASSWORD_BYTES = 72;   // bcrypt ignores everything after 72 bytes

const USAGE = `usage: berth htpasswd add USER --file PATH [--cost N] [--password-stdin]
       berth htpasswd remove USER --file PATH
       berth htpasswd verify USER --file PATH [--password-stdin]
  add      create or update USER with a bcrypt hash (cost 4..17, default ${DEFAULT_BCRYPT_COST}); creates PATH if missing
  remove   delete USER's line(s)
  verify   exit 0 if the password matches, 1 if not
  The password is read from stdin with --password-stdin (one trailing newline is dropped),
  otherwise prompted for without echo (a terminal is required).
`;

class UsageError extends Error {}

/** Exit code: 0 done / password correct, 1 failed / password wrong / user not found, 2 usage error. */
export async function runHtpasswdCommand(argv: string[], io: HtpasswdCommandIo): Promise<number> {
  let values: { file?: string; cost?: string; 'password-stdin'?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        file: { type: 'string', short: 'f' }, cost: { type: 'string' },
        'password-stdin': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr.write(`berth htpasswd: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) { io.stdout.write(USAGE); return 0; }
  try {
    const [action, user, ...extra] = positionals;
    if (!['add', 'remove', 'verify'].includes(action)) throw new UsageError(action ? `unknown action: ${action}` : 'missing action');
    if (user === undefined) throw new UsageError('missing USER');
    if (extra.length) throw new UsageError(`unexpected argument: ${extra[0]}`);
    if (!values.file) throw new UsageError('--file PATH is required');
    const file = resolve(io.cwd ?? process.cwd(), values.file);
    if (action === 'remove') {
      if (values.cost !== undefined || values['password-stdin']) throw new UsageError('remove takes no password options');
      return await remove(file, user, io);
    }
    if (action === 'verify') {
      if (values.cost !== undefined) throw new UsageError('verify takes no --cost');
      return await verify(file, user, await readPassword(io, !!values['password-stdin'], false), io);
    }
    const cost = values.cost === undefined ? DEFAULT_BCRYPT_COST : Number(values.cost);
    if (!Number.isInteger(cost) || cost < 4 || cost > 17) throw new UsageError(`--cost must be an integer 4..17, got ${values.cost}`);
    checkUser(user);
    return await add(file, user, await readPassword(io, !!values['password-stdin'], true), cost, io);
  } catch (err) {
    io.stderr.write(`berth htpasswd: ${(err as Error).message}\n${err instanceof UsageError ? USAGE : ''}`);
    return err instanceof UsageError ? 2 : 1;
  }
}

function checkUser(user: string): void {
  if (user === '' || user.includes(':') || /[\x00-\x1f\x7f]/.test(user) || user.trim() !== user || user.startsWith('#')) {
    throw new UsageError('USER must be non-empty, without ":", control characters, surrounding spaces or a leading "#"');
  }
  if (Buffer.byteLength(user) > 255) throw new UsageError('USER is longer than 255 bytes');
}

// ---- password input -----------------------------------------------------------------------------

async function readPassword(io: HtpasswdCommandIo, fromStdin: boolean, confirm: boolean): Promise<Buffer> {
  let pw: Buffer;
  if (fromStdin) {
    const chunks: Buffer[] = [];
    for await (const c of io.stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
    pw = Buffer.concat(chunks);
    if (pw.at(-1) === 0x0a) pw = pw.subarray(0, -1);
    if (pw.at(-1) === 0x0d) pw = pw.subarray(0, -1);
  } else if (io.stdin.isTTY && io.stdin.setRawMode) {
    pw = await prompt(io, 'Password: ');
    if (confirm && !pw.equals(await prompt(io, 'Re-type password: '))) throw new Error('passwords do not match');
  } else {
    throw new UsageError('stdin is not a terminal: pass the password with --password-stdin');
  }
  if (pw.length === 0) throw new Error('empty password');
  if (confirm && pw.length > MAX_PASSWORD_BYTES) {
    throw new Error(`password is longer than ${MAX_PASSWORD_BYTES} bytes; bcrypt would silently ignore the rest`);
  }
  return pw;
}

/** Reads one line from a TTY in raw mode, echoing nothing. Ctrl-C / Ctrl-D abort. */
function prompt(io: HtpasswdCommandIo, question: string): Promise<Buffer> {
  const stdin = io.stdin;
  io.stderr.write(question);
  stdin.setRawMode!(true);
  stdin.resume();
  return new Promise((resolvePw, reject) => {
    const bytes: number[] = [];
    const done = (err?: Error) => {
      stdin.removeListener('data', onData);
      stdin.setRawMode!(false);
      stdin.pause();
      io.stderr.write('\n');
      if (err) reject(err); else resolvePw(Buffer.from(bytes));
    };
    const onData = (chunk: Buffer | string) => {
      for (const b of Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)) {
        if (b === 0x0d || b === 0x0a) return done();
        if (b === 0x03) return done(new Error('interrupted'));
        if (b === 0x04) return done(bytes.length ? undefined : new Error('no password entered'));
        if (b === 0x7f || b === 0x08) {
          // Backspace: drop one UTF-8 character (its continuation bytes first).
          while (bytes.length && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else {
          bytes.push(b);
        }
      }
    };
    stdin.on('data', onData);
  });
}

// ---- file edits ---------------------------------------------------------------------------------

/** The user a raw line defines, or undefined for comments, blanks and lines without a colon. */
function lineUser(raw: string): string | undefined {
  const l = raw.trim();
  if (l === '' || l.startsWith('#') || !l.includes(':')) return undefined;
  return l.slice(0, l.indexOf(':'));
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function bcryptHash(password: Buffer, cost: number): Promise<string> {
  try {
    const { hash } = await import('@node-rs/bcrypt');
    return await hash(password, { cost, version: '2y' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_OUT_OF_RANGE') throw err;
    const bcryptjs = (await import('bcryptjs')).default;
    // Same algorithm; Apache writes and prefers the $2y$ label.
    return (await bcryptjs.hash(password.toString('utf8'), cost)).replace(/^\$2[ab]\$/, '$2y$');
  }
}

async function add(file: string, user: string, password: Buffer, cost: number, io: HtpasswdCommandIo): Promise<number> {
  const hash = await bcryptHash(password, cost);
  const text = await readIfExists(file);
  const lines = text === undefined || text === '' ? [] : text.split('\n');
  if (lines.at(-1) === '') lines.pop();                      // text ended with a newline
  const cr = text?.includes('\r\n') ? '\r' : '';          // keep a CRLF file CRLF
  const entry = `${user}:${hash}`;
  const at = lines.findIndex((l) => lineUser(l) === user);
  const out = at >= 0
    // Replace the first line of USER in place (keeping its line ending); drop any duplicates.
    ? lines.map((l, i) => (i === at ? entry + (l.endsWith('\r') ? '\r' : '') : l)).filter((l, i) => i <= at || lineUser(l) !== user)
    : [...lines.map((l) => (cr && !l.endsWith('\r') ? l + cr : l)), entry + cr];
  await writeAtomically(file, out.join('\n') + '\n');
  io.stdout.write(`${text === undefined ? 'Created ' + file + '; adding' : at >= 0 ? 'Updating' : 'Adding'} password for user ${user}\n`);
  return 0;
}

async function remove(file: string, user: string, io: HtpasswdCommandIo): Promise<number> {
  const text = await readFile(file, 'utf8');
  const lines = text.split('\n');
  const kept = lines.filter((l) => lineUser(l) !== user);
  if (kept.length === lines.length) {
    io.stderr.write(`User ${user} not found in ${file}\n`);
    return 1;
  }
  await writeAtomically(file, kept.join('\n'));
  io.stdout.write(`Deleting password for user ${user}\n`);
  return 0;
}

async function verify(file: string, user: string, password: Buffer, io: HtpasswdCommandIo): Promise<number> {
  const { users, problems } = parseHtpasswd(await readFile(file, 'utf8'), file);
  for (const p of problems) io.stderr.write(`warning: ${file}:${p.line}  ${p.message}\n`);
  const entry = users.get(user);
  if (!entry) {
    io.stderr.write(`User ${user} not found in ${file}\n`);
    return 1;
  }
  if (await defaultVerifier.verify(entry.kind, password, entry.hash)) {
    io.stdout.write(`Password for user ${user} correct.\n`);
    return 0;
  }
  io.stderr.write('Password verification failed.\n');
  return 1;
}

/** Temp file in the same directory, fsync, rename over the target (through a symlink), fsync the dir. */
async function writeAtomically(file: string, content: string): Promise<void> {
  let target = file;
  let mode = 0o640, uid: number | undefined, gid: number | undefined;
  try {
    if ((await lstat(file)).isSymbolicLink()) target = await realpath(file);
    const st = await stat(target);
    mode = st.mode & 0o7777; uid = st.uid; gid = st.gid;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // a new file: create its directory as `htpasswd -c` users expect `berth htpasswd add --file auth/htpasswd` to
    await mkdir(dirname(target), { recursive: true, mode: 0o750 });
  }
  const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.chmod(mode);   // not subject to the umask
    if (uid !== undefined && gid !== undefined) await chown(tmp, uid, gid).catch(() => {});
    await fh.writeFile(content);
    await fh.sync();
    await fh.close();
    await rename(tmp, target);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  const dir = await open(dirname(target), 'r').catch(() => undefined);
  await dir?.sync().catch(() => {});
  await dir?.close();
}
