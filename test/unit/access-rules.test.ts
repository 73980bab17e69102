// The access rules engine as tables: pattern grammar, matching, specificity, coverage, decisions (the issue's
// example as written), the checks check-config reports, the groups file, and what counts as an anonymous request.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGroups } from '../../src/auth/groups-file.js';
import { isAnonymousRequest } from '../../src/auth/rules-access.js';
import { checkAccessRules, RulesPolicy, type AccessRulesOptions } from '../../src/auth/rules.js';
import { loadConfigFromString } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/config-error.js';
import { compareSpecificity, compilePattern, covers, patternProblem } from '../../src/util/repository-pattern.js';

const ISSUE: AccessRulesOptions = {
  groups: { devs: ['alice'] },
  rules: [
    { repositories: ['public/**'], pull: ['*', 'anonymous'] },
    { repositories: ['team/**'], pull: ['@devs'], push: ['@devs'] },
    { repositories: ['**'], pull: ['*'] },
  ],
};

test('patterns: grammar', () => {
  const ok = ['a', 'team/app', 'team/*', 'team/app-*', '*/app', 'public/**', '**', '**/cache', 'a/**/b', 'a*b*c', 'x.y_z-1'];
  for (const p of ok) assert.equal(patternProblem(p), undefined, p);
  const bad: [string, RegExp][] = [
    ['', /empty pattern/], ['/a', /empty segment/], ['a/', /empty segment/], ['a//b', /empty segment/],
    ['a**', /whole segment/], ['***', /whole segment/], ['a/**b', /whole segment/], ['Team/app', /lowercase/],
    ['a b', /only a-z/], ['a?', /only a-z/], ['a[b]', /only a-z/],
  ];
  for (const [p, why] of bad) assert.match(patternProblem(p) ?? '', why, p);
});

test('patterns: matching (`*` within a segment, `**` one or more whole segments)', () => {
  const rows: [string, string, boolean][] = [
    ['public/**', 'public/x', true], ['public/**', 'public/a/b', true], ['public/**', 'public', false],
    ['public/**', 'publicity/x', false], ['**', 'a', true], ['**', 'a/b/c', true],
    ['team/*', 'team/app', true], ['team/*', 'team/a/b', false], ['team/app-*', 'team/app-1', true],
    ['team/app-*', 'team/app-', true], ['team/app-*', 'team/ap', false], ['*/app', 'x/app', true], ['*/app', 'app', false],
    ['**/cache', 'a/b/cache', true], ['**/cache', 'cache', false], ['a/**/b', 'a/x/y/b', true], ['a/**/b', 'a/b', false],
    ['a.b', 'axb', false], ['a*b*c', 'aXbYc', true], ['a*b*c', 'acb', false],
  ];
  for (const [p, name, want] of rows) assert.equal(compilePattern(p).matches(name), want, `${p} ~ ${name}`);
});

test('patterns: specificity, most specific first', () => {
  const orders: string[][] = [
    ['team/app', 'team/app*', 'team/a*', 'team/*', 'team/**', '*/app', '**'],   // all match team/app
    ['a/b/**', 'a/*/c', 'a/**', '**/c', '**'],                                  // all match a/b/c
    ['a/**/c', 'a/**'],                                                         // a pattern that ends earlier loses
  ];
  for (const order of orders) {
    for (let i = 0; i + 1 < order.length; i++) {
      const [a, b] = [compilePattern(order[i]!), compilePattern(order[i + 1]!)];
      assert.ok(compareSpecificity(a, b) > 0, `${a.source} > ${b.source}`);
      assert.ok(compareSpecificity(b, a) < 0, `${b.source} < ${a.source}`);
    }
  }
  assert.equal(compareSpecificity(compilePattern('a/*'), compilePattern('b/*')), 0);
});

test('patterns: coverage (sound, for unreachable-rule warnings)', () => {
  const rows: [string, string, boolean][] = [
    ['**', 'a/b', true], ['**', 'a/**', true], ['a/**', 'a/b/*', true], ['a/*', 'a/b', true], ['a/*', 'a/b-*', true],
    ['a/b-*', 'a/*', false], ['a/*', 'a/**', false], ['a/**', 'a', false], ['*/x', 'a/x', true], ['a*', 'ab*', true],
    ['ab*', 'a*', false], ['x/**', 'y/**', false], ['a/**/c', 'a/b/c', true], ['a/**/c', 'a/**/c', true],
  ];
  for (const [outer, inner, want] of rows) assert.equal(covers(compilePattern(outer), compilePattern(inner)), want, `${outer} ⊇ ${inner}`);
});

test('decisions: the issue example as written', () => {
  const p = new RulesPolicy(ISSUE);
  const rows: [string | null, string, 'pull' | 'push' | 'delete', boolean, string][] = [
    ['bob', 'public/x', 'pull', true, 'rules[0] public/**'],
    ['bob', 'public/a/b', 'pull', true, 'rules[0] public/**'],
    ['bob', 'other/x', 'pull', true, 'rules[2] **'],
    ['bob', 'team/app', 'pull', false, 'rules[1] team/**'],
    ['bob', 'public/x', 'push', false, 'rules[0] public/**'],
    ['bob', 'team/app', 'push', false, 'rules[1] team/**'],
    ['bob', 'other/x', 'push', false, 'rules[2] **'],
    ['alice', 'team/app', 'push', true, 'rules[1] team/**'],
    ['alice', 'team/app', 'pull', true, 'rules[1] team/**'],
    ['alice', 'team/app', 'delete', false, 'rules[1] team/**'],
    ['alice', 'public/x', 'push', false, 'rules[0] public/**'],
    [null, 'public/x', 'pull', true, 'rules[0] public/**'],
    [null, 'public', 'pull', false, 'rules[2] **'],
    [null, 'other/x', 'pull', false, 'rules[2] **'],
    [null, 'team/app', 'pull', false, 'rules[1] team/**'],
    [null, 'public/x', 'push', false, 'rules[0] public/**'],
  ];
  for (const [user, repo, action, allowed, rule] of rows) {
    assert.deepEqual(p.decide(user, repo, action), { allowed, rule }, `${user ?? 'anonymous'} ${action} ${repo}`);
  }
  assert.equal(p.anonymous, true);
  assert.deepEqual(['public/x', 'team/app', 'other/x'].filter(p.pullable('bob')), ['public/x', 'other/x']);
  assert.deepEqual(['public/x', 'team/app', 'other/x'].filter(p.pullable(null)), ['public/x']);
  assert.deepEqual(['public/x', 'team/app', 'other/x'].filter(p.pullable('alice')), ['public/x', 'team/app', 'other/x']);
});

test('decisions: admins, groups in admins, push implies pull, no match, ties go to the earlier rule', () => {
  const p = new RulesPolicy({
    groups: { ops: ['olga'] },
    admins: ['root', '@ops'],
    rules: [
      { repositories: ['a/*'], push: ['carol'] },
      { repositories: ['a/*'], pull: ['dave'] },          // same pattern: never decides
      { repositories: ['b/x', 'c/**'], delete: ['erin'] },
    ],
  });
  assert.deepEqual(p.decide('root', 'zzz', 'delete'), { allowed: true, rule: 'admins' });
  assert.deepEqual(p.decide('olga', 'a/b', 'push'), { allowed: true, rule: 'admins' });
  assert.deepEqual(p.decide('carol', 'a/b', 'pull'), { allowed: true, rule: 'rules[0] a/*' });
  assert.deepEqual(p.decide('dave', 'a/b', 'pull'), { allowed: false, rule: 'rules[0] a/*' });
  assert.deepEqual(p.decide('erin', 'b/x', 'delete'), { allowed: true, rule: 'rules[2] b/x' });
  assert.deepEqual(p.decide('erin', 'c/d/e', 'pull'), { allowed: false, rule: 'rules[2] c/**' });   // delete implies nothing
  assert.deepEqual(p.decide('erin', 'zzz', 'pull'), { allowed: false, rule: 'no rule matched' });
  assert.deepEqual(p.decide(null, 'a/b', 'pull'), { allowed: false, rule: 'rules[0] a/*' });
  assert.equal(p.anonymous, false);
});

test('decisions: a more specific rule decides alone, even when it does not name the action', () => {
  const p = new RulesPolicy({ rules: [{ repositories: ['**'], pull: ['*'], push: ['*'] }, { repositories: ['secret/**'], pull: [] }] });
  assert.deepEqual(p.decide('bob', 'secret/x', 'pull'), { allowed: false, rule: 'rules[1] secret/**' });
  assert.deepEqual(p.decide('bob', 'open/x', 'push'), { allowed: true, rule: 'rules[0] **' });
});

test('checks: unknown group, group members, unreachable rules, rules granting nothing, unknown users', () => {
  const { errors, warnings } = checkAccessRules({
    groups: { devs: ['alice', '@ops'] },
    admins: ['@admins'],
    rules: [
      { repositories: ['team/**'], pull: ['@devs', '@nope'] },
      { repositories: ['team/**'], push: ['bob'] },               // duplicate of rules[0]
      { repositories: ['team/app', 'x/**'] },                     // grants nothing
      { repositories: ['team/*/y'], pull: ['*'] },                 // team/** is less specific: reachable
      { repositories: ['**'], pull: ['*'] },
      { repositories: ['a/*'], pull: ['*'] },
      { repositories: ['a/b'], pull: ['*'] },                      // more specific than a/*: reachable
      { repositories: ['**'], pull: ['anonymous'] },               // duplicate of rules[4]
    ],
  }, { users: new Set(['alice']) });
  assert.deepEqual(errors.map((e) => `${e.path}: ${e.message}`), [
    'auth.access.groups.devs.1: a group lists users only, found "@ops"',
    'auth.access.admins.0: unknown group "admins" (groups: devs)',
    'auth.access.rules.0.pull.1: unknown group "nope" (groups: devs)',
  ]);
  const w = warnings.map((e) => `${e.path}: ${e.message}`);
  assert.ok(w.includes('auth.access.rules.2: grants nothing (no pull, push or delete): its repositories are denied to everyone but admins; write pull: [] to say so on purpose'), w.join('\n'));
  assert.ok(w.includes('auth.access.rules.1: unreachable: every pattern is decided by another rule first (team/** by rules[0] team/**)'), w.join('\n'));
  assert.ok(w.includes('auth.access.rules.7: unreachable: every pattern is decided by another rule first (** by rules[4] **)'), w.join('\n'));
  assert.ok(w.includes('auth.access.rules.1.push.0: user "bob" is not in the htpasswd file'), w.join('\n'));
  assert.equal(w.filter((x) => /unreachable/.test(x)).length, 2, w.join('\n'));
  assert.equal(w.length, 4, w.join('\n'));
});

test('config: the issue example loads as written; bad principals and patterns are named by line:col', () => {
  const c = loadConfigFromString([
    'auth:',
    '  htpasswd: { path: auth/htpasswd }',
    '  access:',
    '    groups: { devs: [alice] }',
    '    groupsfile: groups.yml',
    '    rules:',
    '      - { repositories: ["public/**"], pull: ["*", anonymous] }',
    '      - { repositories: ["team/**"], pull: ["@devs"], push: ["@devs"] }',
    '      - { repositories: ["**"], pull: ["*"] }',
  ].join('\n'), '/srv/berth/gateway.yml');
  assert.deepEqual(c.auth?.access, {
    groups: { devs: ['alice'] }, groupsfile: '/srv/berth/groups.yml', admins: [],
    rules: [
      { repositories: ['public/**'], pull: ['*', 'anonymous'] },
      { repositories: ['team/**'], pull: ['@devs'], push: ['@devs'] },
      { repositories: ['**'], pull: ['*'] },
    ],
  });
  assert.equal(loadConfigFromString('listen: 127.0.0.1:0\n', '/x/g.yml').auth, undefined);
  assert.throws(() => loadConfigFromString([
    'auth:',
    '  access:',
    '    groups: { "two words": [a], ok: ["b c"] }',
    '    admins: ["@"]',
    '    rules:',
    '      - { repositories: ["Team/**", "a**"], pull: [":"] }',
    '      - { pull: [x] }',
  ].join('\n'), '/x/g.yml'), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.message.split('\n').map((l) => l.replace(/  expected.*?found/, '  … found')), [
      '/x/g.yml:3:15  auth.access.groups.two words  … found string "two words"',
      '/x/g.yml:3:38  auth.access.groups.ok.0  … found string "b c"',
      '/x/g.yml:4:14  auth.access.admins.0  … found string "@"',
      '/x/g.yml:6:26  auth.access.rules.0.repositories.0  … found string "Team/**" ("Team": repository names are lowercase)',
      '/x/g.yml:6:37  auth.access.rules.0.repositories.1  … found string "a**" ("a**": `**` must be a whole segment)',
      '/x/g.yml:6:52  auth.access.rules.0.pull.0  … found string ":"',
      '/x/g.yml:7:9  auth.access.rules.1.repositories  missing required key',
    ]);
    return true;
  });
});

test('groups file: a mapping of group to user names', () => {
  assert.deepEqual(parseGroups('devs: [alice, bob]\nops:\n  - carol\nempty:\n', 'g.yml'), { devs: ['alice', 'bob'], ops: ['carol'], empty: [] });
  assert.deepEqual(parseGroups('', 'g.yml'), {});
  const bad: [string, RegExp][] = [
    ['[a, b]', /expected a mapping/], ['devs: alice', /line 1: group devs: expected a list/],
    ['devs: [a]\ndevs: [b]', /line 2: a group given twice/], ['x:\n  - "@ops"', /line 1: group x: expected user names/],
    ['"bad name": [a]', /group name "bad name"/], ['devs: [a', /not valid YAML/], ['x: [anonymous]', /expected user names/],
  ];
  for (const [text, why] of bad) assert.throws(() => parseGroups(text, 'g.yml'), why, text);
});

test('anonymous requests: no Authorization, or Basic with an empty user and password', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const rows: [string | undefined, boolean][] = [
    [undefined, true], ['', true], [`Basic ${b64(':')}`, true], [`basic   ${b64(':')} `, true],
    [`Basic ${b64('alice:')}`, false], [`Basic ${b64(':pw')}`, false], [`Basic ${b64('a:b')}`, false], ['Bearer x', false],
  ];
  for (const [h, want] of rows) assert.equal(isAnonymousRequest(h), want, String(h));
});
