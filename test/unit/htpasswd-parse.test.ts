import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultVerifier, dummyEntry, parseHtpasswd, type HashKind } from '../../src/auth/htpasswd.js';
import { basicChallenge } from '../../src/auth/access.js';
import { parseBasicAuthorization } from '../../src/auth/basic.js';

// Real outputs of `htpasswd -nb{B,m,s,2,5,d,p}` (apache2-utils 2.4) for the password "secret".
const BCRYPT = '$2y$05$TlisH/gfrVq/6uXpZLXPVOlq.QKueUak3EEV6gG13zhrm4bqGs.Ue';
const APR1 = '$apr1$Gymf2YfF$3wdCmzPCGbyJD8y39W4eI0';
const SHA = '{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=';
const SHA256CRYPT = '$5$0DespS2ePgT9eYO/$7gyylhYccVGlyCY4Rvb.Nsdi/WnIgG.RwXXaxZO8QV5';
// `htpasswd -nb5`, `-nbd`; `openssl passwd -1` and `-6 -salt 'rounds=6000$abc'`; {SSHA} = base64(sha1(pw + salt) + salt).
const SHA512CRYPT = '$6$4b/b1ZM0X.FBfQGO$NMDc9BlFxS7/26U5aM.H/JWIn7DAqNPe2ApvJcBWc66Jj53jAxyU2GPfHzBbqyA5liWg85OEq8mM9UCc7tkDA0';
const SHA512CRYPT_ROUNDS = '$6$rounds=6000$abc$ABnCa.EgL5AcbReFsLcHM7MVAC6hLhuHwHpn5ivc06FeOmmuNjH4JfZOmz2714BqJA4NMMLkJXdqHatoiCsic/';
const DES = '.1qmeMiXizJ7A';
const MD5CRYPT = '$1$XvJSeJMq$W.ydViVg8W6dyACxjQwXV/';
const SSHA = '{SSHA}pVM1m+a9asU+I4eOuJQ7BbpyJKWhssPU';

const accepted: [string, string, string][] = [
  ['bcrypt $2y$', `alice:${BCRYPT}`, 'bcrypt'],
  ['bcrypt $2a$', `alice:${BCRYPT.replace('$2y$', '$2a$')}`, 'bcrypt'],
  ['bcrypt $2b$', `alice:${BCRYPT.replace('$2y$', '$2b$')}`, 'bcrypt'],
  ['apr1', `alice:${APR1}`, 'apr1'],
  ['{SHA}', `alice:${SHA}`, 'sha'],
  ['CRLF line end', `alice:${BCRYPT}\r`, 'bcrypt'],
  ['surrounding whitespace', `  alice:${APR1}  `, 'apr1'],
  ['extra colon field ignored (as Apache does)', `alice:${SHA}:comment`, 'sha'],
  ['non-ASCII user name', `üser:${BCRYPT}`, 'bcrypt'],
  ['MD5 crypt $1$', `alice:${MD5CRYPT}`, 'md5crypt'],
  ['SHA-256 crypt $5$', `alice:${SHA256CRYPT}`, 'sha256crypt'],
  ['SHA-512 crypt $6$', `alice:${SHA512CRYPT}`, 'sha512crypt'],
  ['SHA-512 crypt with rounds=', `alice:${SHA512CRYPT_ROUNDS}`, 'sha512crypt'],
  ['{SSHA}', `alice:${SSHA}`, 'ssha'],
];

for (const [name, line, kind] of accepted) {
  test(`parse accepts ${name}`, () => {
    const r = parseHtpasswd(line + '\n');
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.users.size, 1);
    const e = [...r.users.values()][0];
    assert.equal(e.kind, kind);
    assert.equal(e.line, 1);
    assert.ok(!e.hash.endsWith('\r') && !e.hash.includes(' '));
  });
}

const rejected: [string, string, RegExp][] = [
  ['no colon', 'justaword', /malformed line: expected user:hash/],
  ['empty user', `:${BCRYPT}`, /empty user name/],
  ['empty hash', 'alice:', /empty hash for user "alice"/],
  ['truncated bcrypt', `alice:${BCRYPT.slice(0, 40)}`, /malformed bcrypt hash/],
  ['bcrypt cost 03', `alice:${BCRYPT.replace('$05$', '$03$')}`, /cost 03 out of range/],
  ['bcrypt $2x$', `alice:${BCRYPT.replace('$2y$', '$2x$')}`, /\$2x\$/],
  ['malformed apr1', 'alice:$apr1$abc', /malformed apr1 hash/],
  ['malformed {SHA}', 'alice:{SHA}abc', /malformed \{SHA\} hash/],
  ['truncated SHA-256 crypt', `alice:${SHA256CRYPT.slice(0, -1)}`, /malformed SHA-256-crypt \$5\$ hash/],
  ['malformed SHA-512 crypt', 'alice:$6$salt$abc', /malformed SHA-512-crypt \$6\$ hash/],
  ['SHA-512 crypt with too many rounds', `alice:${SHA512CRYPT_ROUNDS.replace('6000', '2000000')}`, /rounds=2000000: berth checks at most 1000000/],
  ['malformed MD5 crypt', 'alice:$1$salt$abc', /malformed MD5-crypt/],
  ['malformed {SSHA}', 'alice:{SSHA}abc=', /malformed \{SSHA\} hash/],
  ['yescrypt', 'alice:$y$j9T$abc$def', /unsupported crypt scheme \$y\$/],
  ['plain text without {PLAIN} (htpasswd -p)', 'alice:secret', /unsupported hash \(plain text without \{PLAIN\}/],
];

for (const [name, line, message] of rejected) {
  test(`parse reports ${name} with its line number`, () => {
    const r = parseHtpasswd(`# header\n\nbob:${APR1}\n${line}\n`);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    assert.equal(r.problems[0].line, 4);
    assert.match(r.problems[0].message, message);
    assert.deepEqual([...r.users.keys()], ['bob']);
  });
}

test('{PLAIN} and DES crypt are accepted with a warning naming the line', () => {
  const r = parseHtpasswd(`bob:${APR1}\nalice:{PLAIN}secret\ncarol:${DES}\n`);
  assert.deepEqual(r.problems, []);
  assert.deepEqual([...r.users.values()].map((e) => e.kind), ['apr1', 'plain', 'des']);
  assert.deepEqual(r.warnings.map((w) => w.line), [2, 3]);
  assert.match(r.warnings[0].message, /plain-text password \(\{PLAIN\}\).*\(user "alice"\)/);
  assert.match(r.warnings[1].message, /DES crypt.*first 8 characters/);
  for (const w of r.warnings) assert.ok(!w.message.includes('secret') && !w.message.includes(DES), w.message);
});

// Every kind verifies the right password and refuses a wrong one (the tools' real outputs above, password "secret").
const verifyCases: [HashKind, string][] = [
  ['bcrypt', BCRYPT], ['apr1', APR1], ['sha', SHA], ['md5crypt', MD5CRYPT], ['sha256crypt', SHA256CRYPT],
  ['sha512crypt', SHA512CRYPT], ['sha512crypt', SHA512CRYPT_ROUNDS], ['des', DES], ['ssha', SSHA], ['plain', '{PLAIN}secret'],
];
for (const [kind, hash] of verifyCases) {
  test(`defaultVerifier: ${kind} ${hash.slice(0, 10)}…`, async () => {
    assert.equal(parseHtpasswd(`u:${hash}`).users.get('u')?.kind, kind);
    assert.equal(await defaultVerifier.verify(kind, Buffer.from('secret'), hash), true);
    assert.equal(await defaultVerifier.verify(kind, Buffer.from('secreT'), hash), false);
    assert.equal(await defaultVerifier.verify(kind, Buffer.from(''), hash), false);
  });
}

test('dummy entries of every kind match no password', async () => {
  for (const [kind, hash] of verifyCases) {
    const d = dummyEntry(parseHtpasswd(`u:${hash}`).users);
    assert.equal(d.kind, kind);
    assert.equal(await defaultVerifier.verify(d.kind, Buffer.from('secret'), d.hash), false);
    assert.equal(parseHtpasswd(`u:${d.hash}`).users.get('u')?.kind, kind, 'the dummy is a valid hash of its kind');
  }
});

test('problem messages never contain the hash (it might be a plaintext password)', () => {
  const r = parseHtpasswd('alice:hunter2secret!\nbob:$6$x$hunter3\n');
  assert.equal(r.problems.length, 2);
  for (const p of r.problems) assert.ok(!p.message.includes('hunter'), p.message);
});

test('comments, blank lines, CRLF and a BOM; line numbers count every line', () => {
  const text = '\uFEFF# users\r\n\r\n   # indented comment\r\nalice:' + BCRYPT + '\r\n\t\r\nbob:' + APR1 + '\r\ncarol:' + SHA;
  const r = parseHtpasswd(text);
  assert.deepEqual(r.problems, []);
  assert.deepEqual([...r.users.values()].map((e) => [e.user, e.kind, e.line]),
    [['alice', 'bcrypt', 4], ['bob', 'apr1', 6], ['carol', 'sha', 7]]);
});

test('every bad line is reported, not just the first', () => {
  const r = parseHtpasswd(`a\nalice:${BCRYPT}\nb\nc:\n`);
  assert.deepEqual(r.problems.map((p) => p.line), [1, 3, 4]);
});

test('duplicate users: the first entry wins (as Apache) and the duplicate is a problem', () => {
  const r = parseHtpasswd(`alice:${BCRYPT}\nbob:${SHA}\nalice:${APR1}\n`);
  assert.equal(r.users.get('alice')?.kind, 'bcrypt');
  assert.deepEqual(r.problems, [{ line: 3, message: 'duplicate user "alice" (first defined on line 1)' }]);
});

test('dummy entry follows the most common kind and bcrypt cost', () => {
  assert.deepEqual(dummyEntry(new Map()).hash.slice(0, 7), '$2y$10$');
  const t = parseHtpasswd(`a:${BCRYPT}\nb:${BCRYPT.replace('$05$', '$12$')}\nc:${BCRYPT}\n`).users;
  assert.equal(dummyEntry(t).hash.slice(0, 7), '$2y$05$');
  assert.equal(dummyEntry(parseHtpasswd(`a:${APR1}\nb:${APR1}\nc:${BCRYPT}`).users).kind, 'apr1');
  assert.equal(dummyEntry(parseHtpasswd(`a:${SHA}`).users).kind, 'sha');
});

test('Basic challenge escapes quotes and backslashes and drops control characters', () => {
  assert.equal(basicChallenge('Registry Realm'), 'Basic realm="Registry Realm"');
  assert.equal(basicChallenge('a "b" \\c\r\nd'), 'Basic realm="a \\"b\\" \\\\cd"');
});

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const headerCases: [string, string, { user: string; password: string } | null][] = [
  ['ok', 'Basic ' + b64('alice:secret'), { user: 'alice', password: 'secret' }],
  ['scheme is case-insensitive', 'bAsIc ' + b64('alice:secret'), { user: 'alice', password: 'secret' }],
  ['password may contain colons', 'Basic ' + b64('alice:a:b'), { user: 'alice', password: 'a:b' }],
  ['empty password', 'Basic ' + b64('alice:'), { user: 'alice', password: '' }],
  ['unpadded base64', 'Basic ' + b64('alice:secre').replace(/=+$/, ''), { user: 'alice', password: 'secre' }],
  ['UTF-8 user', 'Basic ' + b64('üser:pässwörd'), { user: 'üser', password: 'pässwörd' }],
  ['missing colon', 'Basic ' + b64('alicesecret'), null],
  ['empty user', 'Basic ' + b64(':secret'), null],
  ['bad base64', 'Basic !!!notbase64', null],
  ['impossible base64 length', 'Basic abcde', null],
  ['other scheme', 'Bearer abc.def', null],
  ['no credentials', 'Basic', null],
  ['garbage', '\u0000\u00ff', null],
  ['invalid UTF-8 user', 'Basic ' + b64(Buffer.from([0xff, 0xfe, 0x3a, 0x61])), null],
  ['very long header', 'Basic ' + 'A'.repeat(100_000), null],
];
for (const [name, value, want] of headerCases) {
  test(`parseBasicAuthorization: ${name}`, () => {
    const got = parseBasicAuthorization(value);
    assert.deepEqual(got && { user: got.user, password: got.password.toString('utf8') }, want);
  });
}

test('$5$/$6$ checks run off the event loop (a worker thread): timers keep firing during a 300000-round check', async () => {
  // openssl passwd -6 -salt 'rounds=300000$loopcheck' secret
  const hash = '$6$rounds=300000$loopcheck$' + (await import('node:child_process')).execFileSync('openssl',
    ['passwd', '-6', '-salt', 'rounds=300000$loopcheck', 'secret'], { encoding: 'utf8' }).trim().split('$').pop();
  let last = performance.now(), worst = 0;
  const tick = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last); last = now; }, 5);
  try {
    const started = performance.now();
    assert.equal(await defaultVerifier.verify('sha512crypt', Buffer.from('secret'), hash), true);
    assert.equal(await defaultVerifier.verify('sha512crypt', Buffer.from('wrong'), hash), false);
    assert.ok(performance.now() - started > 100, 'the check itself takes a while');
    assert.ok(worst < 100, `the event loop stalled for ${worst.toFixed(0)} ms`);
  } finally {
    clearInterval(tick);
  }
});
