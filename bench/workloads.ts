// One function per benchmark workload, each run against one stack and returning one number (plus what the
// stack spent, via meter()). Clients: skopeo in a fresh sandbox per copy (its own blob-info cache), undici
// in-process for raw blob uploads (streamed, never buffered), curl for blob downloads, wrk for request
// rates. Every response body is consumed; nothing here touches the servers' files.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { createSandbox, run } from '../test/support/clients.js';
import { MT } from '../test/support/images.js';
import { blobStream, MiB } from './data.js';
import type { Creds, Stack, Tls } from './stacks.js';

const MB = 1e6;

// ---------- skopeo ----------

/** skopeo with a fresh sandbox (HOME, XDG dirs, auth file, policy) and its own blob-info cache: as root,
 *  containers/image keeps that cache in /var/lib/containers/cache unless it believes it runs rootless, which
 *  `_CONTAINERS_ROOTLESS_UID` makes it do (the cache then lives in the sandbox's XDG_DATA_HOME). */
async function skopeoCopy(stack: Stack, tls: Tls, creds: Creds, args: string[], dir: 'src' | 'dest'): Promise<void> {
  const sb = await createSandbox([stack.host]);
  try {
    const tlsArgs = stack.tls ? [`--${dir}-cert-dir`, tls.certDir, `--${dir}-tls-verify=true`] : [`--${dir}-tls-verify=false`];
    const credArgs = stack.auth ? [`--${dir}-creds`, `${creds.user}:${creds.password}`] : [];
    const other = dir === 'src' ? '--dest-tls-verify=false' : '--src-tls-verify=false';
    await sb.skopeo(['copy', '--quiet', ...tlsArgs, other, ...credArgs, ...args], { timeoutMs: 1_800_000, env: { _CONTAINERS_ROOTLESS_UID: '1000' } });
  } finally {
    await sb.cleanup();
  }
}

export async function skopeoPush(stack: Stack, tls: Tls, creds: Creds, srcRef: string, repo: string): Promise<number> {
  const t0 = performance.now();
  await skopeoCopy(stack, tls, creds, [srcRef, `docker://${stack.host}/${repo}:latest`], 'dest');
  return (performance.now() - t0) / 1000;
}

export async function skopeoPull(stack: Stack, tls: Tls, creds: Creds, repo: string, scratch: string): Promise<number> {
  const dest = join(scratch, `pull-${Date.now()}`);
  const t0 = performance.now();
  try {
    await skopeoCopy(stack, tls, creds, [`docker://${stack.host}/${repo}:latest`, `oci:${dest}:latest`], 'src');
    return (performance.now() - t0) / 1000;
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
}

// ---------- raw blob uploads (undici) and downloads (curl) ----------

function hdr(stack: Stack, creds: Creds, extra: Record<string, string> = {}): Record<string, string> {
  return stack.auth ? { authorization: creds.header, ...extra } : extra;
}

async function expect(r: Awaited<ReturnType<typeof request>>, status: number, what: string): Promise<void> {
  if (r.statusCode !== status) throw new Error(`${what}: HTTP ${r.statusCode} (wanted ${status}): ${(await r.body.text()).slice(0, 500)}`);
  await r.body.dump();
}

async function startUpload(stack: Stack, creds: Creds, repo: string): Promise<URL> {
  const r = await request(`${stack.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', dispatcher: stack.dispatcher, headers: hdr(stack, creds, { 'content-length': '0' }) });
  const loc = r.headers.location;
  await expect(r, 202, 'POST upload');
  return new URL(String(loc), stack.url);
}

function withDigest(u: URL, digest: string): string { const v = new URL(u); v.searchParams.set('digest', digest); return v.toString(); }

/** POST + PUT ?digest= with the whole blob as the PUT body. Returns seconds. */
export async function monolithicUpload(stack: Stack, creds: Creds, repo: string, seed: number, size: number, digest: string): Promise<number> {
  const t0 = performance.now();
  const loc = await startUpload(stack, creds, repo);
  const r = await request(withDigest(loc, digest), {
    method: 'PUT', dispatcher: stack.dispatcher, body: blobStream(seed, size),
    headers: hdr(stack, creds, { 'content-type': 'application/octet-stream', 'content-length': String(size) }),
  });
  await expect(r, 201, 'PUT monolithic');
  return (performance.now() - t0) / 1000;
}

/** POST, PATCH chunks of `chunk` bytes (Content-Range), PUT ?digest= with no body. Returns seconds. */
export async function chunkedUpload(stack: Stack, creds: Creds, repo: string, seed: number, size: number, digest: string, chunk = 16 * MiB): Promise<number> {
  const t0 = performance.now();
  let loc = await startUpload(stack, creds, repo);
  for (let start = 0; start < size; start += chunk) {
    const end = Math.min(size, start + chunk);
    const r = await request(loc.toString(), {
      method: 'PATCH', dispatcher: stack.dispatcher, body: blobStream(seed, end, start),
      headers: hdr(stack, creds, { 'content-type': 'application/octet-stream', 'content-length': String(end - start), 'content-range': `${start}-${end - 1}` }),
    });
    const next = r.headers.location;
    await expect(r, 202, `PATCH ${start}-${end - 1}`);
    loc = new URL(String(next), stack.url);
  }
  const r = await request(withDigest(loc, digest), { method: 'PUT', dispatcher: stack.dispatcher, headers: hdr(stack, creds, { 'content-length': '0' }) });
  await expect(r, 201, 'PUT chunked commit');
  return (performance.now() - t0) / 1000;
}

/** One blob as docker pushes a layer (moby's blob writer, distribution's httpBlobUpload.ReadFrom): POST, one PATCH
 *  whose body declares no length (chunked transfer encoding), PUT ?digest= with no body. */
async function streamedUpload(stack: Stack, creds: Creds, repo: string, seed: number, size: number, digest: string): Promise<void> {
  const loc = await startUpload(stack, creds, repo);
  const r = await request(loc.toString(), {
    method: 'PATCH', dispatcher: stack.dispatcher, body: blobStream(seed, size),
    headers: hdr(stack, creds, { 'content-type': 'application/octet-stream' }),
  });
  const next = r.headers.location;
  await expect(r, 202, 'PATCH without a length');
  const put = await request(withDigest(new URL(String(next), stack.url), digest), { method: 'PUT', dispatcher: stack.dispatcher, headers: hdr(stack, creds, { 'content-length': '0' }) });
  await expect(put, 201, 'PUT commit');
}

/** `blobs` pushed as docker pushes an image's layers: each by streamedUpload, `concurrency` at a time (docker's
 *  max-concurrent-uploads, 5 by default), in the order given. Returns seconds. */
export async function dockerStylePush(stack: Stack, creds: Creds, repo: string, blobs: ReadonlyArray<{ seed: number; size: number; digest: string }>, concurrency = 5): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < blobs.length) {
      const b = blobs[next++]!;
      await streamedUpload(stack, creds, repo, b.seed, b.size, b.digest);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, blobs.length) }, worker));
  return (performance.now() - t0) / 1000;
}

/** GET a blob with curl into /dev/null; checks the status and the byte count. Returns seconds (curl's
 *  spawn and TLS handshake included, ~10 ms). Not undici in this process: its body iteration costs
 *  ~1.1 CPU-s per GiB on one thread and capped both stacks near its own ceiling (bench/RESULTS.md,
 *  "The GET client"); curl needs ~0.6. The credentials go in on stdin (curl -K -), not in argv. */
export async function blobGet(stack: Stack, tls: Tls, creds: Creds, repo: string, digest: string, size: number): Promise<number> {
  const config = stack.auth ? `header = "Authorization: ${creds.header}"\n` : '';
  const args = ['-sS', '-K', '-', '-o', '/dev/null', '-w', '%{http_code} %{size_download}',
    ...(stack.tls ? ['--cacert', tls.certFile] : []), `${stack.url}/v2/${repo}/blobs/${digest}`];
  const t0 = performance.now();
  const { stdout } = await run('curl', args, { input: config, timeoutMs: 600_000 });
  const secs = (performance.now() - t0) / 1000;
  const [status, n] = stdout.trim().split(' ').map(Number);
  if (status !== 200) throw new Error(`GET blob: HTTP ${status}`);
  if (n !== size) throw new Error(`GET blob: ${n} bytes, wanted ${size}`);
  return secs;
}

/** Pushes a tiny image (one config blob, one layer, a manifest tagged `tag`) for the request-rate workloads. */
export async function pushSmallImage(stack: Stack, creds: Creds, repo: string): Promise<{ blobDigest: string }> {
  const { createHash } = await import('node:crypto');
  const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
  const put = async (b: Buffer) => {
    const loc = await startUpload(stack, creds, repo);
    const r = await request(withDigest(loc, sha(b)), { method: 'PUT', dispatcher: stack.dispatcher, body: b, headers: hdr(stack, creds, { 'content-type': 'application/octet-stream' }) });
    await expect(r, 201, 'PUT small blob');
    return { digest: sha(b), size: b.length };
  };
  const layer = await put(Buffer.from('berth bench layer '.repeat(1000)));
  const config = await put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, ...config }, layers: [{ mediaType: MT.ociLayer, ...layer }] }));
  const r = await request(`${stack.url}/v2/${repo}/manifests/latest`, { method: 'PUT', dispatcher: stack.dispatcher, body: manifest, headers: hdr(stack, creds, { 'content-type': MT.ociManifest }) });
  await expect(r, 201, 'PUT manifest');
  return { blobDigest: layer.digest };
}

// ---------- request rates (wrk) ----------

export interface WrkResult { rps: number; requests: number; non2xx: number; socketErrors: string | null; latencyP50?: string; latencyP99?: string }

export async function wrk(stack: Stack, creds: Creds, path: string, method: 'GET' | 'HEAD', o: { connections: number; threads: number; seconds: number; scratch: string }): Promise<WrkResult> {
  const script = join(o.scratch, `wrk-${method}.lua`);
  await mkdir(o.scratch, { recursive: true });
  await writeFile(script, `wrk.method = "${method}"\n`);
  const headers = [`Accept: ${MT.ociManifest}, ${MT.dockerManifest}, ${MT.ociIndex}`, ...(stack.auth ? [`Authorization: ${creds.header}`] : [])];
  const { stdout } = await run('wrk', ['-t', String(o.threads), '-c', String(o.connections), '-d', `${o.seconds}s`, '--latency',
    ...headers.flatMap((h) => ['-H', h]), '-s', script, `${stack.url}${path}`], { timeoutMs: (o.seconds + 60) * 1000 });
  const num = (re: RegExp) => { const m = stdout.match(re); return m ? Number(m[1]) : 0; };
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  const requests = num(/(\d+) requests in/);
  const non2xx = num(/Non-2xx or 3xx responses:\s+(\d+)/);
  const sock = stdout.match(/Socket errors:[^\n]*/);
  const p50 = stdout.match(/^\s+50%\s+(\S+)/m)?.[1];
  const p99 = stdout.match(/^\s+99%\s+(\S+)/m)?.[1];
  if (requests === 0 || non2xx > 0) throw new Error(`wrk ${method} ${path} on ${stack.side}: ${requests} requests, ${non2xx} non-2xx\n${stdout}`);
  return { rps, requests, non2xx, socketErrors: sock ? sock[0] : null, latencyP50: p50, latencyP99: p99 };
}

export const mbPerS = (bytes: number, s: number) => bytes / MB / s;

// ---------- HEAD request rates (a raw keep-alive HTTP/1.1 loader) ----------
// wrk's parser waits for the Content-Length body of a HEAD response, and undici closes the connection after
// every HEAD (it guards against servers that send a body anyway), so neither measures HEAD on keep-alive.

/** `connections` keep-alive (TLS) connections, one request in flight on each, for `seconds`; every request
 *  carries the Authorization header. Responses must have no body (HEAD, or 204/304). In this process. */
export async function headLoad(stack: Stack, creds: Creds, path: string, o: { connections: number; seconds: number; tls: Tls }): Promise<WrkResult> {
  const tlsMod = await import('node:tls'); const net = await import('node:net');
  const u = new URL(stack.url);
  const reqText = `HEAD ${path} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: berth-bench\r\nAccept: ${MT.ociManifest}, ${MT.dockerManifest}\r\n` +
    (stack.auth ? `Authorization: ${creds.header}\r\n` : '') + 'Connection: keep-alive\r\n\r\n';
  const req = Buffer.from(reqText, 'latin1');
  let requests = 0; let non2xx = 0; let reconnects = 0;
  const t0 = performance.now(); const end = t0 + o.seconds * 1000;
  const one = () => new Promise<void>((resolve, reject) => {
    const open = () => stack.tls
      ? tlsMod.connect({ host: u.hostname, port: Number(u.port), ca: o.tls.cert })
      : net.connect({ host: u.hostname, port: Number(u.port) });
    let sock = open(); let buf = '';
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      for (let k = buf.indexOf('\r\n\r\n'); k >= 0; k = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, k); buf = buf.slice(k + 4);
        const status = Number(head.slice(9, 12));
        if (status >= 200 && status < 300) requests++; else non2xx++;
        const close = /\r\nconnection:\s*close/i.test(head);
        if (performance.now() >= end) { sock.end(); resolve(); return; }
        if (close) { reconnects++; sock.destroy(); sock = open(); wire(); }
        sock.write(req);
      }
    };
    const wire = () => { sock.on('data', onData); sock.once('error', reject); sock.once('close', () => { if (performance.now() < end && !sock.destroyed) reject(new Error('closed')); }); };
    wire(); sock.write(req);
  });
  await Promise.all(Array.from({ length: o.connections }, one));
  const secs = (performance.now() - t0) / 1000;
  if (requests === 0 || non2xx > 0) throw new Error(`HEAD ${path} on ${stack.side}: ${requests} ok, ${non2xx} non-2xx`);
  return { rps: requests / secs, requests, non2xx, socketErrors: reconnects ? `${reconnects} reconnects (Connection: close)` : null };
}
