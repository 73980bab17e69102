// Helpers for the auth adversarial tests (auth-*.test.ts): a real berth from startServer on 127.0.0.1:0
// with filesystem storage and a real htpasswd file (bcrypt at a real cost), the access controller
// startServer would build (so tests can read its check gate), and a small authenticated image push.
import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hash } from '@node-rs/bcrypt';
import type { HtpasswdAccessController } from '../../src/auth/basic.js';
import { createAccessController } from '../../src/auth/basic.js';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/gateway/server.js';
import { request, type HttpResponse } from '../support/http.js';
import { captureLog, type CapturedLog } from '../support/tls-certs.js';

export type T = { after(fn: () => unknown): void };

export const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');

export interface AuthBerth {
  server: RunningServer;
  url: string;
  dir: string;
  htpasswd: string;
  cap: CapturedLog;
  access: HtpasswdAccessController;
}

/** htpasswd lines for `users` (name → password) at bcrypt `cost` (default 10, what `htpasswd -B` and our CLI write). */
export async function htpasswdText(users: Record<string, string>, cost = 10): Promise<string> {
  const lines = await Promise.all(Object.entries(users).map(async ([u, p]) => `${u}:${await hash(p, { cost, version: '2y' })}`));
  return lines.join('\n') + '\n';
}

/** A berth with htpasswd auth for `users`; the access controller is the one startServer would build from the config. */
export async function startAuthBerth(t: T, users: Record<string, string>, o: { cost?: number; yaml?: string } = {}): Promise<AuthBerth> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-adv-auth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, await htpasswdText(users, o.cost));
  const config = loadConfigFromString(
    'listen: 127.0.0.1:0\nregistry: { storage: { filesystem: { rootdirectory: data } } }\n'
    + `auth: { htpasswd: { realm: Test Realm, path: htpasswd } }\n${o.yaml ?? ''}\n`, join(dir, 'gateway.yml'));
  const cap = captureLog('info');
  const access = await createAccessController(config.auth, cap.log) as HtpasswdAccessController;
  const server = await startServer(config, cap.log, { drainMs: 1000, access });
  t.after(() => server.close());
  return { server, url: server.url, dir, htpasswd, cap, access };
}

const sha256 = (b: Uint8Array | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** Pushes a one-layer image as `authorization` (monolithic blob uploads, then the manifest); returns its paths. */
export async function pushSmallImage(url: string, authorization: string, repo: string, tag: string,
  localAddress?: string): Promise<{ manifest: string; layer: string }> {
  const headers = { authorization };
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = randomBytes(4096);
  for (const blob of [config, layer]) {
    const r = await request(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, {
      method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: blob, localAddress,
    });
    if (r.status !== 201) throw new Error(`blob push: ${r.status} ${r.text()}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  });
  const r = await request(`${url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT', headers: { ...headers, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest, localAddress,
  });
  if (r.status !== 201) throw new Error(`manifest push: ${r.status} ${r.text()}`);
  return { manifest: `/v2/${repo}/manifests/${tag}`, layer: `/v2/${repo}/blobs/${sha256(layer)}` };
}

/** GET `path` as `authorization` from `localAddress`. */
export function authGet(url: string, path: string, authorization: string | undefined, localAddress?: string): Promise<HttpResponse> {
  return request(url + path, {
    headers: { authorization, accept: 'application/vnd.oci.image.manifest.v1+json' }, localAddress, timeoutMs: 30_000,
  });
}
