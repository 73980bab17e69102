// Access rules (auth.access) against the real clients: the built CLI serving htpasswd plus the issue's rules, and
// skopeo, podman and buildah each pushing where the rules allow (alice to team/**), being refused where they do
// not (alice to other/**: the client's error says denied; bob to team/**), and pulling a public repository anonymously, with no
// login and no credentials (and being refused a team repository that way). One scenario, run per client.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import bcrypt from 'bcryptjs';
import { createSandbox, skipUnless, ToolError, type Sandbox, type Tool } from '../support/clients.js';
import { writeOciLayout, type GeneratedImage } from '../support/images.js';
import { startBerth, type ServerProcess } from '../support/processes.js';

const PASSWORD = 'access-e2e-pw';

async function berthWithRules(t: TestContext): Promise<ServerProcess> {
  const dir = await workDir('berth-access-e2e');
  t.after(() => rm(dir, { recursive: true, force: true }));
  const hash = await bcrypt.hash(PASSWORD, 4);
  await writeFile(join(dir, 'htpasswd'), ['alice', 'bob', 'root'].map((u) => `${u}:${hash}\n`).join(''));
  const srv = await startBerth({
    configYaml: [
      'listen: 127.0.0.1:0',
      'registry: { storage: { filesystem: { rootdirectory: ROOT } } }',
      'auth:',
      `  htpasswd: { realm: Berth Test, path: ${JSON.stringify(join(dir, 'htpasswd'))} }`,
      '  access:',
      '    groups: { devs: [alice] }',
      '    admins: [root]',
      '    rules:',
      '      - { repositories: ["public/**"], pull: ["*", anonymous] }',
      '      - { repositories: ["team/**"], pull: ["@devs"], push: ["@devs"] }',
      '      - { repositories: ["**"], pull: ["*"] }',
      '',
    ].join('\n'),
  });
  t.after(() => srv.close());
  return srv;
}

/** How one client pushes and pulls with and without credentials. */
interface Client {
  tool: Tool;
  push(sb: Sandbox, img: GeneratedImage, dest: string, creds: string): Promise<unknown>;
  /** creds undefined: anonymous (no login, no credentials). */
  pull(sb: Sandbox, src: string, creds: string | undefined, work: string): Promise<unknown>;
}

const skopeo: Client = {
  tool: 'skopeo',
  push: (sb, img, dest, creds) => sb.skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', creds, img.ref, `docker://${dest}`]),
  pull: (sb, src, creds, work) => sb.skopeo(['copy', '--src-tls-verify=false', ...(creds ? ['--src-creds', creds] : ['--src-no-creds']),
    `docker://${src}`, `dir:${join(work, `pulled-${randomBytes(4).toString('hex')}`)}`]),
};

function storageClient(tool: 'podman' | 'buildah'): Client {
  const cli = (sb: Sandbox, args: string[]) => (tool === 'podman' ? sb.podman(args) : sb.buildah(args));
  return {
    tool,
    async push(sb, img, dest, creds) {
      const id = (await cli(sb, ['pull', '--quiet', img.ref])).stdout.trim().split('\n').pop()!;
      return cli(sb, ['push', '--tls-verify=false', '--creds', creds, id, `docker://${dest}`]);
    },
    async pull(sb, src, creds) {
      await cli(sb, ['rmi', '--all', '--force']).catch(() => undefined);
      return cli(sb, ['pull', '--tls-verify=false', '--quiet', ...(creds ? ['--creds', creds] : []), src]);
    },
  };
}

for (const client of [skopeo, storageClient('podman'), storageClient('buildah')]) {
  test(`${client.tool}: alice pushes to team/** and is refused on other/** (denied), bob is refused on team/**; anonymous pull of public/**, refused on team/**`,
    { skip: skipUnless(client.tool) }, async (t) => {
      const srv = await berthWithRules(t);
      const sb = await createSandbox([srv.host]);
      t.after(() => sb.cleanup());
      const work = await workDir(`berth-access-${client.tool}`);
      t.after(() => rm(work, { recursive: true, force: true }));
      const img = await writeOciLayout(join(work, 'src'), { layers: [{ size: 64 * 1024, kind: 'random' }], tag: 'v1' });
      const h = srv.host;

      await client.push(sb, img, `${h}/team/${client.tool}:v1`, `alice:${PASSWORD}`);
      // alice may pull other/** (rules[2]) but not push there: the upload's POST gets 403 DENIED, and the client says so.
      const refused = await client.push(sb, img, `${h}/other/${client.tool}:v1`, `alice:${PASSWORD}`).then(() => undefined, (e: unknown) => e);
      assert.ok(refused instanceof ToolError, `alice's push to other/** must fail (${client.tool})`);
      assert.match(refused.stderr, /requested access to the resource is denied/, `${client.tool}'s error names the refusal:\n${refused.stderr}`);
      assert.doesNotMatch(refused.stderr, /authentication required|unauthorized/i, 'a 403, not a 401: alice did log in');
      // bob may not even pull team/**: the client's first request (HEAD of a blob) gets a bodiless 403.
      const bob = await client.push(sb, img, `${h}/team/${client.tool}-bob:v1`, `bob:${PASSWORD}`).then(() => undefined, (e: unknown) => e);
      assert.ok(bob instanceof ToolError, `bob's push to team/** must fail (${client.tool})`);
      assert.match(bob.stderr, /denied|403 \(Forbidden\)/i, `${client.tool}: ${bob.stderr}`);

      await client.push(sb, img, `${h}/public/${client.tool}:v1`, `root:${PASSWORD}`);   // root: an admin
      await client.pull(sb, `${h}/public/${client.tool}:v1`, undefined, work);              // no login, no credentials
      const anon = await client.pull(sb, `${h}/team/${client.tool}:v1`, undefined, work).then(() => undefined, (e: unknown) => e);
      assert.ok(anon instanceof ToolError, `an anonymous pull of team/** must fail (${client.tool})`);
      assert.match(anon.stderr, /unauthorized|authentication required/i, `${client.tool}: ${anon.stderr}`);
      await client.pull(sb, `${h}/team/${client.tool}:v1`, `alice:${PASSWORD}`, work);
      const bobPull = await client.pull(sb, `${h}/team/${client.tool}:v1`, `bob:${PASSWORD}`, work).then(() => undefined, (e: unknown) => e);
      assert.ok(bobPull instanceof ToolError, `bob may not pull team/** (${client.tool})`);
      assert.match(bobPull.stderr, /denied/i, `${client.tool}: ${bobPull.stderr}`);

      // The access log says who was refused by which rule.
      const lines = srv.output().stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      const denied = (user: string) => lines.find((l) => l.msg === 'request completed' && l.user === user && l.status === 403);
      assert.equal(denied('alice')?.access, 'denied');
      assert.equal(denied('alice')?.rule, 'rules[2] **');
      assert.equal(denied('bob')?.access, 'denied');
      assert.equal(denied('bob')?.rule, 'rules[1] team/**');
    });
}

test('podman login, then push where allowed and refused where not; podman logout, anonymous pull', { skip: skipUnless('podman') }, async (t) => {
  const srv = await berthWithRules(t);
  const sb = await createSandbox([srv.host]);
  t.after(() => sb.cleanup());
  const work = await workDir('berth-access-login');
  t.after(() => rm(work, { recursive: true, force: true }));
  const img = await writeOciLayout(join(work, 'src'), { layers: [{ size: 32 * 1024, kind: 'random' }], tag: 'v1' });
  const id = (await sb.podman(['pull', '--quiet', img.ref])).stdout.trim().split('\n').pop()!;
  await sb.podman(['login', '--tls-verify=false', '-u', 'alice', '-p', PASSWORD, srv.host]);
  await sb.podman(['push', '--tls-verify=false', id, `docker://${srv.host}/team/login:v1`]);
  const other = await sb.podman(['push', '--tls-verify=false', id, `docker://${srv.host}/other/login:v1`]).then(() => undefined, (e: unknown) => e);
  assert.ok(other instanceof ToolError);
  assert.match(other.stderr, /denied/i, other.stderr);
  await sb.podman(['push', '--tls-verify=false', id, `docker://${srv.host}/team/login:v2`]);
  await sb.podman(['logout', srv.host]);
  await sb.podman(['login', '--tls-verify=false', '-u', 'root', '-p', PASSWORD, srv.host]);
  await sb.podman(['push', '--tls-verify=false', id, `docker://${srv.host}/public/login:v1`]);
  await sb.podman(['logout', srv.host]);
  await sb.podman(['rmi', '--all', '--force']);
  await sb.podman(['pull', '--tls-verify=false', '--quiet', `${srv.host}/public/login:v1`]);
});

/** A lowercase temp dir (podman/buildah name images pulled from oci:PATH after PATH). */
async function workDir(prefix: string): Promise<string> {
  const dir = join(tmpdir(), `${prefix}-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}
