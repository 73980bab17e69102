// End-to-end: the built CLI (`berth serve`) with htpasswd auth, a notification endpoint and the debug
// listener, driven by skopeo. Every push and pull event carries actor.name = the htpasswd user, the
// debug listener reports the endpoint drained, and the public listener serves none of /metrics or /debug.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { createSandbox, skipUnless } from '../support/clients.js';
import { writeOciLayout } from '../support/images.js';
import { startBerth, type ServerProcess } from '../support/processes.js';
import { request } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

const USER = 'e2e-user';
const PASSWORD = 'e2e-password-1';

/** The debug listener's URL from berth's JSON log (`debug server listening`, logged before `listening on`). */
function debugUrl(berth: ServerProcess): string {
  for (const line of berth.output().stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as { msg?: string; url?: string };
    if (j.msg === 'debug server listening' && j.url) return j.url;
  }
  assert.fail(`no 'debug server listening' line in:\n${berth.output().stdout}`);
}

test('berth serve: skopeo push and pull through htpasswd → events with actor.name; endpoint stats on the debug listener only', { skip: skipUnless('skopeo') }, async (t) => {
  const hook = await startWebhookReceiver();
  t.after(() => hook.close());
  const dir = await makeTempDir('berth-e2e-notify-');
  t.after(() => dir.cleanup());
  const htpasswd = join(dir.path, 'htpasswd');
  await writeFile(htpasswd, `${USER}:${await bcrypt.hash(PASSWORD, 5)}\n`);
  const berth = await startBerth({
    configYaml: [
      'listen: 127.0.0.1:0',
      `auth: { htpasswd: { realm: E2E Realm, path: ${JSON.stringify(htpasswd)} } }`,
      'registry:',
      '  storage:',
      '    filesystem: { rootdirectory: "ROOT" }',
      '  notifications:',
      `    endpoints: [{ name: e2e-hook, url: "${hook.url}", timeout: 2s, threshold: 3, backoff: 100ms }]`,
      '  http: { debug: { addr: "127.0.0.1:0" } }',
      'log: { level: info }',
      '',
    ].join('\n'),
  });
  t.after(() => berth.close());
  const debug = debugUrl(berth);

  const sb = await createSandbox([berth.host]);
  t.after(() => sb.cleanup());
  const img = await writeOciLayout(join(dir.path, 'src'), { layers: [{ size: 64 * 1024, kind: 'random' }, { size: 32 * 1024, kind: 'text' }] });
  const ref = `docker://${berth.host}/e2e/notify:v1`;
  await sb.skopeo(['copy', '--dest-creds', `${USER}:${PASSWORD}`, img.ref, ref]);
  const blobs = [img.config.digest, ...img.layers.map((l) => l.digest)];
  const pushes = await hook.waitDelivered(blobs.length + 1);
  await sb.skopeo(['copy', '--src-creds', `${USER}:${PASSWORD}`, ref, `dir:${join(dir.path, 'out')}`]);
  const all = await hook.waitDelivered(2 * (blobs.length + 1));

  assert.deepEqual(pushes.map((e) => `${e.action} ${e.target.digest}`).sort(),
    [...blobs, img.manifestDigest].map((d) => `push ${d}`).sort());
  assert.deepEqual(all.slice(pushes.length).map((e) => `${e.action} ${e.target.digest}`).sort(),
    [...blobs, img.manifestDigest].map((d) => `pull ${d}`).sort());
  for (const e of all) {
    assert.deepEqual(e.actor, { name: USER }, `${e.action} ${e.target.digest}`);
    assert.equal(e.request.addr, '127.0.0.1');
    assert.equal(e.request.host, berth.host);
    assert.match(e.request.useragent, /skopeo|containers/i);
  }

  // The debug listener: the endpoint drained, counters agree with what the receiver accepted.
  let ep: any;
  await waitUntil('the endpoint to drain', async () => {
    ep = (await request(`${debug}/debug/vars`)).json().notifications.endpoints.find((e: any) => e.name === 'e2e-hook');
    return ep?.pending === 0 && ep.delivered === all.length;
  }, { timeoutMs: 10_000, intervalMs: 20, detail: () => JSON.stringify(ep) });
  assert.deepEqual({ url: ep.url, failures: ep.failures, backingOff: ep.backingOff }, { url: hook.url, failures: 0, backingOff: false });
  const metrics = (await request(`${debug}/metrics`)).text();
  assert.match(metrics, new RegExp(`^berth_notifications_delivered_total\\{endpoint="e2e-hook"\\} ${all.length}$`, 'm'));
  assert.match(metrics, /^berth_notifications_pending\{endpoint="e2e-hook"\} 0$/m);

  // The public listener answers 404 for the debug paths (before auth: no challenge either).
  for (const path of ['/metrics', '/debug/vars', '/debug/health']) {
    assert.equal((await request(`${berth.url}${path}`)).status, 404, path);
  }
});
