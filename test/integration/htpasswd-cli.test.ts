// `berth htpasswd` writes files Apache's own `htpasswd -v` accepts, and reads files it wrote.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { promisify } from 'node:util';
import { runHtpasswdCommand } from '../../src/cli/htpasswd-command.js';
import { parseHtpasswd } from '../../src/auth/htpasswd.js';
import { makeTempDir } from '../support/tmp.js';
import { withDeadline } from '../support/wait.js';

const execFileP = promisify(execFile);
/** Apache's htpasswd (or any tool), killed after 30 s. */
const run = (cmd: string, args: string[]) => execFileP(cmd, args, { timeout: 30_000 });

/** Apache's verdict: `htpasswd -vb FILE USER PASS` exits 0 when the password is correct. */
async function apacheVerifies(file: string, user: string, password: string): Promise<boolean> {
  try {
    await run('htpasswd', ['-vb', file, user, password]);
    return true;
  } catch (err) {
    if ((err as { code?: unknown }).code === 3) return false;   // "password verification failed"
    if ((err as { code?: unknown }).code === 6) return false;   // user not found
    throw err;
  }
}

/** `berth htpasswd ARGS` in-process; it must finish within 20 s (a prompt waiting for input that never comes fails). */
async function berth(args: string[], stdin: string | NodeJS.ReadableStream = '', cwd?: string) {
  let stdout = '', stderr = '';
  const code = await withDeadline(runHtpasswdCommand(args, {
    stdin: typeof stdin === 'string' ? Readable.from([Buffer.from(stdin)]) : stdin,
    stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, cwd,
  }), 20_000, `berth htpasswd ${args.join(' ')}`, () => `stdout: ${stdout}\nstderr: ${stderr}`);
  return { code, stdout, stderr };
}

async function tmp(t: TestContext) {
  const d = await makeTempDir('berth-htcli-');
  t.after(() => d.cleanup());
  return d.path;
}

test('add creates a bcrypt $2y$ file (default cost 10, --cost) that Apache verifies', async (t) => {
  const dir = await tmp(t);
  const file = join(dir, 'htpasswd');
  const r = await berth(['add', 'alice', '--file', file, '--password-stdin'], 's3cret\n');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /adding password for user alice/);
  assert.match(await readFile(file, 'utf8'), /^alice:\$2y\$10\$[./A-Za-z0-9]{53}\n$/);
  assert.equal((await stat(file)).mode & 0o777, 0o640);
  assert.ok(await apacheVerifies(file, 'alice', 's3cret'), 'trailing newline from stdin is not part of the password');
  assert.ok(!(await apacheVerifies(file, 'alice', 's3cret\n')));
  assert.ok(!(await apacheVerifies(file, 'alice', 'wrong')));

  assert.equal((await berth(['add', 'üser', '-f', 'htpasswd', '--cost', '4', '--password-stdin'], 'pässwörd', dir)).code, 0);
  assert.match(await readFile(file, 'utf8'), /^üser:\$2y\$04\$/m);
  assert.ok(await apacheVerifies(file, 'üser', 'pässwörd'));
  assert.deepEqual(await readdir(dir), ['htpasswd'], 'no temp files left behind');
});

test('add creates the missing directories of a new file (as the quick start runs it: --file auth/htpasswd)', async (t) => {
  const dir = await tmp(t);
  const r = await berth(['add', 'alice', '--file', join('auth', 'nested', 'htpasswd'), '--password-stdin', '--cost', '4'], 'pw', dir);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(await apacheVerifies(join(dir, 'auth', 'nested', 'htpasswd'), 'alice', 'pw'));
  assert.equal((await stat(join(dir, 'auth'))).mode & 0o777, 0o750);
});

test('add/remove preserve comments, other users and CRLF; update replaces in place; Apache agrees', async (t) => {
  const dir = await tmp(t);
  const file = join(dir, 'htpasswd');
  await run('htpasswd', ['-cb', file, 'apr', 'apr-pw']);                 // apr1, as `htpasswd -c` writes
  await run('htpasswd', ['-bs', file, 'sha', 'sha-pw']);
  await run('htpasswd', ['-bB', '-C', '4', file, 'bc', 'bc-pw']);
  const original = await readFile(file, 'utf8');
  const [aprLine, shaLine, bcLine] = original.trim().split('\n');
  await writeFile(file, `# team registry\r\n${aprLine}\r\n\r\n# robots\r\n${shaLine}\r\n${bcLine}\r\n`);

  assert.equal((await berth(['add', 'sha', '--file', file, '--cost', '4', '--password-stdin'], 'new-pw')).code, 0);
  assert.equal((await berth(['add', 'zed', '--file', file, '--cost', '4', '--password-stdin'], 'zed-pw')).code, 0);
  const after = await readFile(file, 'utf8');
  const lines = after.split('\r\n');
  assert.deepEqual(lines.slice(0, 4), ['# team registry', aprLine, '', '# robots']);
  assert.match(lines[4], /^sha:\$2y\$04\$/, 'updated in place');
  assert.deepEqual(lines.slice(5), [bcLine, lines[6], '']);
  assert.match(lines[6], /^zed:\$2y\$04\$/);
  assert.ok(!after.replace(/\r\n/g, '').includes('\n'), 'still CRLF throughout');
  for (const [u, p] of [['apr', 'apr-pw'], ['sha', 'new-pw'], ['bc', 'bc-pw'], ['zed', 'zed-pw']]) {
    assert.ok(await apacheVerifies(file, u, p), `apache verifies ${u}`);
  }
  assert.ok(!(await apacheVerifies(file, 'sha', 'sha-pw')));
  assert.deepEqual(parseHtpasswd(after).problems, []);

  const rm = await berth(['remove', 'bc', '--file', file]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(await readFile(file, 'utf8'), after.replace(bcLine + '\r\n', ''));
  assert.ok(!(await apacheVerifies(file, 'bc', 'bc-pw')));
  assert.ok(await apacheVerifies(file, 'apr', 'apr-pw'));
  const again = await berth(['remove', 'bc', '--file', file]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /User bc not found/);
});

test('verify exits 0/1 for files written by Apache (bcrypt, apr1, {SHA})', async (t) => {
  const dir = await tmp(t);
  const file = join(dir, 'htpasswd');
  await run('htpasswd', ['-cbB', '-C', '4', file, 'bc', 'bc-pw']);
  await run('htpasswd', ['-bm', file, 'md5', 'md5-pw']);
  await run('htpasswd', ['-bs', file, 'sha', 'sha-pw']);
  for (const [u, p] of [['bc', 'bc-pw'], ['md5', 'md5-pw'], ['sha', 'sha-pw']]) {
    const ok = await berth(['verify', u, '--file', file, '--password-stdin'], p + '\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`Password for user ${u} correct`));
    const bad = await berth(['verify', u, '--file', file, '--password-stdin'], p + 'x');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Password verification failed/);
  }
  assert.equal((await berth(['verify', 'nobody', '--file', file, '--password-stdin'], 'x')).code, 1);
});

test('prompts without echo on a terminal (add asks twice)', async (t) => {
  const dir = await tmp(t);
  const file = join(dir, 'htpasswd');
  // A stand-in terminal: raw mode is recorded, keystrokes arrive as bytes.
  const tty = Object.assign(new PassThrough(), { isTTY: true, raw: [] as boolean[], setRawMode(r: boolean) { tty.raw.push(r); } });
  const pending = berth(['add', 'alice', '--file', file, '--cost', '4'], tty);
  tty.write('pw-typo\x7f\x7f\x7f\x7fx-1\r');
  setImmediate(() => tty.write('pw-x-1\r'));
  const r = await pending;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Password: \nRe-type password: \n/);
  assert.ok(!r.stderr.includes('pw-') && !r.stdout.includes('pw-'), 'nothing echoed');
  assert.deepEqual(tty.raw, [true, false, true, false]);
  assert.ok(await apacheVerifies(file, 'alice', 'pw-x-1'));
});

test('usage errors exit 2; failures exit 1; the file is untouched', async (t) => {
  const dir = await tmp(t);
  const file = join(dir, 'htpasswd');
  await writeFile(file, '# keep me\n');
  const cases: [string[], string, number, RegExp][] = [
    [['add', 'alice', '--password-stdin'], 'pw', 2, /--file PATH is required/],
    [['add', 'alice', '--file', file, '--cost', '3', '--password-stdin'], 'pw', 2, /--cost must be an integer 4..17/],
    [['add', 'a:b', '--file', file, '--password-stdin'], 'pw', 2, /USER must be/],
    [['add', '#x', '--file', file, '--password-stdin'], 'pw', 2, /USER must be/],
    [['add', 'alice', '--file', file], '', 2, /not a terminal: pass the password with --password-stdin/],
    [['frobnicate', 'alice', '--file', file], '', 2, /unknown action/],
    [['add', '--file', file], '', 2, /missing USER/],
    [['add', 'alice', '--file', file, '--bogus'], '', 2, /Unknown option/],
    [['add', 'alice', '--file', file, '--password-stdin'], '\n', 1, /empty password/],
    [['add', 'alice', '--file', file, '--password-stdin'], 'x'.repeat(73), 1, /longer than 72 bytes/],
    [['remove', 'alice', '--file', join(dir, 'missing')], '', 1, /ENOENT/],
  ];
  for (const [args, stdin, code, message] of cases) {
    const r = await berth(args, stdin);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  assert.equal(await readFile(file, 'utf8'), '# keep me\n');
  assert.deepEqual((await readdir(dir)).sort(), ['htpasswd']);
});

test('writes through a symlink and keeps the file mode', async (t) => {
  const dir = await tmp(t);
  const real = join(dir, 'real');
  await writeFile(real, '', { mode: 0o600 });
  await symlink(real, join(dir, 'link'));
  assert.equal((await berth(['add', 'alice', '--file', join(dir, 'link'), '--cost', '4', '--password-stdin'], 'pw')).code, 0);
  assert.match(await readFile(real, 'utf8'), /^alice:/);
  assert.equal((await stat(real)).mode & 0o777, 0o600);
  assert.ok(await apacheVerifies(join(dir, 'link'), 'alice', 'pw'));
});
