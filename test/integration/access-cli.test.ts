// The built CLI on access rules: `berth access check USER REPOSITORY ACTION --config FILE` (decision, rule, exit
// code) and check-config's access checks (errors stop it, warnings are printed), on files written here.
// Needs `npm run build` first.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import bcrypt from 'bcryptjs';
import { runCli } from '../support/processes.js';
import { makeTempDir } from '../support/tmp.js';

async function files(t: TestContext, rules: string, groups = 'devs: [alice]\nops: [root]\n'): Promise<string> {
  const tmp = await makeTempDir('berth-access-cli-');
  t.after(() => tmp.cleanup());
  const hash = await bcrypt.hash('pw', 4);
  await writeFile(join(tmp.path, 'htpasswd'), ['alice', 'bob', 'root'].map((u) => `${u}:${hash}\n`).join(''));
  await writeFile(join(tmp.path, 'groups.yml'), groups);
  const file = join(tmp.path, 'gateway.yml');
  await writeFile(file, [
    'listen: 127.0.0.1:0',
    'registry: { storage: { inmemory: {} } }',
    'auth:',
    '  htpasswd: { path: htpasswd }',
    '  access:',
    '    groupsfile: groups.yml',
    '    admins: ["@ops"]',
    '    rules:',
    rules,
  ].join('\n'));
  return file;
}

const ISSUE_RULES = [
  '      - { repositories: ["public/**"], pull: ["*", anonymous] }',
  '      - { repositories: ["team/**"], pull: ["@devs"], push: ["@devs"] }',
  '      - { repositories: ["**"], pull: ["*"] }',
].join('\n');

test('access check: the decision and the rule that made it; exit 0 allowed, 1 denied, 2 usage', async (t) => {
  const file = await files(t, ISSUE_RULES);
  const rows: [string, string, string, number, string][] = [
    ['bob', 'public/x', 'pull', 0, 'allowed: bob pull public/x (rules[0] public/**)\n'],
    ['bob', 'other/x', 'pull', 0, 'allowed: bob pull other/x (rules[2] **)\n'],
    ['bob', 'team/app', 'push', 1, 'denied: bob push team/app (rules[1] team/**)\n'],
    ['bob', 'other/x', 'push', 1, 'denied: bob push other/x (rules[2] **)\n'],
    ['alice', 'team/app', 'push', 0, 'allowed: alice push team/app (rules[1] team/**)\n'],
    ['root', 'secret/thing', 'delete', 0, 'allowed: root delete secret/thing (admins)\n'],
    ['anonymous', 'public/x', 'pull', 0, 'allowed: anonymous pull public/x (rules[0] public/**)\n'],
    ['anonymous', 'other/x', 'pull', 1, 'denied: anonymous pull other/x (rules[2] **)\n  (an anonymous request is answered 401: log in and try again)\n'],
    ['zed', 'other/x', 'pull', 0, 'allowed: zed pull other/x (rules[2] **)\n  (note: zed is not in the htpasswd file: serve answers its requests 401)\n'],
  ];
  for (const [user, repo, action, code, out] of rows) {
    const r = await runCli(['access', 'check', user, repo, action, '--config', file]);
    assert.equal(r.code, code, `${user} ${action} ${repo}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, out);
  }
  const usage = await runCli(['access', 'check', 'bob', 'x', 'fly', '--config', file]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /ACTION must be pull, push or delete, found "fly"/);
  assert.equal((await runCli(['access', 'check', 'bob', '--config', file])).code, 2);
});

test('check-config: unknown group and a bad groups file are errors; unreachable rules, rules granting nothing and unknown users are warnings', async (t) => {
  const bad = await files(t, `${ISSUE_RULES}\n      - { repositories: ["y/**"], pull: ["@nobody"] }`);
  let r = await runCli(['check-config', bad]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stdout, `${bad}:12:42  auth.access.rules.3.pull.0  unknown group "nobody" (groups: devs, ops)\n`);
  r = await runCli(['serve', '--config', bad]);   // serve refuses the same way, before listening
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot start\n.*auth\.access\.rules\.3\.pull\.0  unknown group "nobody"/);

  const badGroups = await files(t, ISSUE_RULES, 'devs: alice\n');
  r = await runCli(['check-config', badGroups]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /gateway\.yml:6:17  auth\.access\.groupsfile  .*groups\.yml: line 1: group devs: expected a list of user names\n$/);

  const warn = await files(t, [
    ISSUE_RULES,
    '      - { repositories: ["team/**"], delete: ["@devs"] }',
    '      - { repositories: ["x/*"] }',
    '      - { repositories: ["z/*"], push: [carol] }',
  ].join('\n'));
  r = await runCli(['check-config', warn]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, `${warn}: ok\n`);
  const warnings = r.stderr.split('\n').filter(Boolean);
  assert.deepEqual(warnings, [
    `warning: ${warn}:13:9  auth.access.rules.4  grants nothing (no pull, push or delete): its repositories are denied to everyone but admins; write pull: [] to say so on purpose`,
    `warning: ${warn}:12:9  auth.access.rules.3  unreachable: every pattern is decided by another rule first (team/** by rules[1] team/**)`,
    `warning: ${warn}:14:41  auth.access.rules.5.push.0  user "carol" is not in the htpasswd file`,
  ]);
});
