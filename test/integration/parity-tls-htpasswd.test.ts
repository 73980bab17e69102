// Issue 15 point 9: every htpasswd line format nginx accepts on glibc logs in to a real berth (startServer on
// real sockets), each line written by the real tool that writes it (htpasswd -B/-m/-s/-d, openssl passwd
// -1/-5/-6, {SSHA} from openssl dgst); a line nginx would refuse (htpasswd -p plain text, yescrypt, garbage) is
// skipped with a `file:line` warning and never stops the rest of the file from working.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer } from '../../src/gateway/server.js';
import { request } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';
import { captureLog } from '../support/tls-certs.js';

const run = promisify(execFile);
const TOOL_TIMEOUT = { timeout: 30_000 };

async function htpasswd(flag: string, user: string, password: string): Promise<string> {
  return (await run('htpasswd', [`-nb${flag}`, user, password], TOOL_TIMEOUT)).stdout.trim();
}
async function opensslPasswd(flag: string, user: string, password: string): Promise<string> {
  return `${user}:${(await run('openssl', ['passwd', flag, password], TOOL_TIMEOUT)).stdout.trim()}`;
}
/** {SSHA}: base64(sha1(password + salt) + salt), the digest by openssl (as OpenLDAP's slappasswd writes it). */
async function ssha(user: string, password: string): Promise<string> {
  const salt = Buffer.from('5a1tb7e5', 'hex');
  const child = execFile('openssl', ['dgst', '-sha1', '-binary'], { encoding: 'buffer', ...TOOL_TIMEOUT });
  const out = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`openssl exited ${code}`))));
  });
  child.stdin!.end(Buffer.concat([Buffer.from(password), salt]));
  return `${user}:{SSHA}${Buffer.concat([await out, salt]).toString('base64')}`;
}

const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');

test('every line format nginx accepts logs in to berth; bad lines are skipped with file:line warnings', async (t) => {
  const tmp = await makeTempDir('berth-parity-htpasswd-');
  t.after(() => tmp.cleanup());
  const good: [user: string, password: string, line: string][] = [];
  const add = async (user: string, password: string, make: (u: string, p: string) => Promise<string>) => {
    good.push([user, password, await make(user, password)]);
  };
  await add('bcrypt', 'pw-bcrypt', (u, p) => htpasswd('B', u, p));
  await add('apr1', 'pw-apr1', (u, p) => htpasswd('m', u, p));
  await add('sha', 'pw-sha', (u, p) => htpasswd('s', u, p));
  await add('des', 'pw-des', (u, p) => htpasswd('d', u, p));
  await add('md5crypt', 'pw-md5crypt', (u, p) => opensslPasswd('-1', u, p));
  await add('sha256crypt', 'pw-sha256', (u, p) => opensslPasswd('-5', u, p));
  await add('sha512crypt', 'pw-sha512', (u, p) => opensslPasswd('-6', u, p));
  await add('ssha', 'pw-ssha', ssha);
  good.push(['plain', 'pw-plain', 'plain:{PLAIN}pw-plain']);
  // bcrypt's $2a$ and $2b$ spellings of the same hash (htpasswd writes $2y$).
  const b = good[0]![2].slice('bcrypt:'.length);
  good.push(['bcrypt2a', 'pw-bcrypt', `bcrypt2a:${b.replace('$2y$', '$2a$')}`], ['bcrypt2b', 'pw-bcrypt', `bcrypt2b:${b.replace('$2y$', '$2b$')}`]);

  const plainP = await htpasswd('p', 'plaintext', 'pw-plaintext');   // nginx on glibc refuses it too
  const lines = [
    '# written by htpasswd and openssl',
    ...good.slice(0, 4).map((g) => g[2]),
    plainP,                                 // line 6
    'yescrypt:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7',   // line 7
    'garbage without a colon',              // line 8
    ...good.slice(4).map((g) => g[2]),
  ];
  const file = join(tmp.path, 'htpasswd');
  await writeFile(file, lines.join('\n') + '\n');
  const config = loadConfigFromString(
    `listen: "127.0.0.1:0"\nauth: { htpasswd: { path: ${JSON.stringify(file)}, cache: false } }\nregistry: { storage: { inmemory: {} } }\n`,
    join(tmp.path, 'gateway.yml'));
  const cap = captureLog('info');
  const server = await startServer(config, cap.log, { drainMs: 1000 });
  t.after(() => server.close());

  for (const [user, password] of good) {
    const ok = await request(`${server.url}/v2/`, { headers: { authorization: basic(user, password) } });
    assert.equal(ok.status, 200, `${user} logs in`);
    const wrong = await request(`${server.url}/v2/`, { headers: { authorization: basic(user, password + 'x') } });
    assert.equal(wrong.status, 401, `${user} with a wrong password is refused`);
  }
  // DES crypt counts the first 8 characters only, as crypt(3) does.
  assert.equal((await request(`${server.url}/v2/`, { headers: { authorization: basic('des', 'pw-des') } })).status, 200);
  assert.equal((await request(`${server.url}/v2/`, { headers: { authorization: basic('plaintext', 'pw-plaintext') } })).status, 401);

  for (const [line, what] of [[6, /unsupported hash \(plain text without \{PLAIN\}/], [7, /unsupported crypt scheme \$y\$/], [8, /malformed line/]] as const) {
    const l = await cap.waitFor((x) => x.level === 40 && x.line === line, `the warning for line ${line}`);
    assert.equal(l.msg.slice(0, file.length + String(line).length + 3), `${file}:${line}: `);
    assert.match(l.msg, what);
    assert.match(l.msg, /line skipped$/);
  }
  const plainWarning = await cap.waitFor((x) => x.level === 40 && /plain-text password/.test(x.msg), 'the {PLAIN} warning');
  assert.ok(plainWarning.msg.startsWith(`${file}:${lines.indexOf('plain:{PLAIN}pw-plain') + 1}: plain-text password`), plainWarning.msg);
  const text = JSON.stringify(cap.lines);
  assert.ok(!text.includes('pw-plain'), 'no password in the logs');
});
