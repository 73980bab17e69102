// `node --import tsx bench/get-probe.ts [--size MiB] [--repeats N] [--clients undici,curl]
//   [--stacks berth,anchor,static] [--profile]`: where does a big blob GET spend its time, and is it the
// client? Starts the stacks (bench/stacks.ts: berth TLS + htpasswd, the classic nginx → Distribution + redis;
// `static`: nginx serving the classic stack's blob file as a static file, the clients' ceiling), uploads one
// blob, then GETs it with each client, interleaved, and prints median wall MB/s, server CPU-s per GiB and
// client CPU-s per GiB (undici: this process's cpuUsage; curl: its rusage via /usr/bin/time). --profile
// runs berth (restarted after the upload) under --cpu-prof and prints its hot functions.
// A diagnostic for the download path (bench/RESULTS.md, "The GET client"); `npm run bench` is the benchmark.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { run } from '../test/support/clients.js';
import { makeTestCert } from '../test/support/tls-certs.js';
import { blobDigest, MiB } from './data.js';
import { summarizeProfile } from './profile.js';
import { agentFor, meter, startAnchor, startBerth, tempDir, type Creds, type Stack, type Tls } from './stacks.js';
import { request } from 'undici';
import { monolithicUpload } from './workloads.js';

const { values: a } = parseArgs({ options: {
  size: { type: 'string', default: '1024' },
  repeats: { type: 'string', default: '3' },
  clients: { type: 'string', default: 'undici,curl' },
  stacks: { type: 'string', default: 'berth,anchor' },
  profile: { type: 'boolean', default: false },
} });
const size = Number(a.size) * MiB;
const GiB = size / (1024 * MiB);
const median = (xs: number[]) => { const s = [...xs].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };

/** The bench's GET client until it moved to curl: undici in this process, body iterated and counted. */
async function undiciGet(stack: Stack, creds: Creds, digest: string): Promise<number> {
  const t0 = performance.now();
  const r = await request(`${stack.url}/v2/bench/probe/blobs/${digest}`, { dispatcher: stack.dispatcher, headers: stack.auth ? { authorization: creds.header } : {} });
  if (r.statusCode !== 200) throw new Error(`GET blob: HTTP ${r.statusCode}`);
  let n = 0;
  for await (const c of r.body) n += (c as Buffer).length;
  if (n !== size) throw new Error(`GET blob: ${n} bytes, wanted ${size}`);
  return (performance.now() - t0) / 1000;
}

async function curlGet(stack: Stack, tls: Tls, creds: Creds, digest: string): Promise<{ secs: number; clientCpu: number }> {
  const args = ['-f', '%U %S %e', 'curl', '-sS', '-o', '/dev/null', '--cacert', tls.certFile, '-H', `Authorization: ${creds.header}`,
    '-w', '%{size_download}\n', `${stack.url}/v2/bench/probe/blobs/${digest}`];
  const t0 = performance.now();
  const { out, err } = await new Promise<{ out: string; err: string }>((res, rej) => {
    const c = spawn('/usr/bin/time', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    c.stdout.on('data', (d) => { out += d; }); c.stderr.on('data', (d) => { err += d; });
    c.on('exit', (code) => (code === 0 ? res({ out, err }) : rej(new Error(`curl exit ${code}: ${err}`))));
  });
  const secs = (performance.now() - t0) / 1000;
  if (Number(out.trim()) !== size) throw new Error(`curl got ${out.trim()} bytes`);
  const [u, s] = err.trim().split('\n').pop()!.split(' ').map(Number);
  return { secs, clientCpu: u! + s! };
}

async function main(): Promise<void> {
  const dir = await tempDir('berth-getprobe-');
  const stacks: Stack[] = [];
  try {
    const c = await makeTestCert();
    const tls: Tls = { cert: c.cert, key: c.key, certFile: join(dir, 'domain.crt'), keyFile: join(dir, 'domain.key'), certDir: join(dir, 'certs.d') };
    await writeFile(tls.certFile, c.cert); await writeFile(tls.keyFile, c.key, { mode: 0o600 });
    const password = 'probe-' + Math.random().toString(36).slice(2);
    const creds: Creds = { user: 'bench', password, htpasswdFile: join(dir, 'htpasswd'), header: 'Basic ' + Buffer.from(`bench:${password}`).toString('base64') };
    await run('htpasswd', ['-B', '-C', '5', '-b', '-c', creds.htpasswdFile, creds.user, password]);
    const profDir = join(dir, 'cpuprof');
    const want = new Set(a.stacks!.split(','));
    const S: Stack[] = [];
    const labels = new Map<Stack, string>();
    const digest = await blobDigest(7, size);
    const berthOpts = { dir, root: join(dir, 'b'), tls, creds, secure: true, logLevel: 'info' };
    if (want.has('berth')) {
      // Upload first with an unprofiled berth, so the profile shows only the GETs.
      const up = await startBerth(berthOpts);
      try { await monolithicUpload(up, creds, 'bench/probe', 7, size, digest); } finally { await up.stop(); }
      const b = await startBerth({ ...berthOpts, nodeArgs: a.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [] });
      stacks.push(b); S.push(b);
    }
    if (want.has('anchor') || want.has('static')) {
      const x = await startAnchor({ dir, tls, creds, root: join(dir, 'a') }); stacks.push(x);
      await monolithicUpload(x, creds, 'bench/probe', 7, size, digest);
      if (want.has('anchor')) S.push(x);
      // The clients' ceiling: nginx serving the classic stack's blob file as a static file (no proxy, no auth).
      if (want.has('static')) { const st = await startStatic(dir, tls, join(dir, 'a')); stacks.push(st); S.push(st); labels.set(st, 'static'); }
    }
    const clients = a.clients!.split(',');
    const R = Number(a.repeats);
    type Acc = { wall: number[]; srv: number[]; cli: number[] };
    const acc = new Map<string, Acc>();
    // Interleaved (repeat → client → stack, stack order alternating) so load from elsewhere hits all alike.
    for (let r = 0; r < R; r++) {
      for (const cl of clients) {
        for (const s of r % 2 ? [...S].reverse() : S) {
          const m = meter(s);
          let secs: number; let clientCpu: number;
          if (cl === 'curl') ({ secs, clientCpu } = await curlGet(s, tls, creds, digest));
          else {
            const u0 = process.cpuUsage();
            secs = await undiciGet(s, creds, digest);
            const u = process.cpuUsage(u0); clientCpu = (u.user + u.system) / 1e6;
          }
          m.stop();
          const k = `${cl.padEnd(7)} ${(labels.get(s) ?? s.side).padEnd(6)}`;
          if (!acc.has(k)) acc.set(k, { wall: [], srv: [], cli: [] });
          const x = acc.get(k)!;
          x.wall.push(size / 1e6 / secs); x.srv.push(m.result().cpuS / GiB); x.cli.push(clientCpu / GiB);
        }
      }
    }
    for (const [k, x] of acc) {
      console.log(`${k} ${median(x.wall).toFixed(0).padStart(5)} MB/s  server ${median(x.srv).toFixed(2)} CPU-s/GiB  client ${median(x.cli).toFixed(2)} CPU-s/GiB   (MB/s ${x.wall.map((v) => v.toFixed(0)).join(' ')}; server ${x.srv.map((v) => v.toFixed(2)).join(' ')})`);
    }
    if (a.profile) {
      for (const s of stacks.splice(0)) await s.stop();
      const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
      for (const f of files) console.log(summarizeProfile(await readFile(join(profDir, f), 'utf8'), 30));
    }
  } finally {
    for (const s of stacks.splice(0)) await s.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

/** nginx (TLS, sendfile off as with TLS anyway) serving `<root>/docker/registry/v2/blobs/sha256/ab/abc…/data`
 *  at /v2/bench/probe/blobs/sha256:abc…, so undiciGet/curlGet work unchanged. Port 18000-18999. */
async function startStatic(dir: string, tls: Tls, root: string): Promise<Stack> {
  // (a fixed port range avoids parsing nginx's output; a clash fails the probe loudly)
  const work = join(dir, 'static'); await mkdir(work, { recursive: true });
  const port = 18000 + Math.floor(Math.random() * 1000);
  await writeFile(join(work, 'nginx.conf'), `${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes auto; pid ${work}/nginx.pid; error_log ${work}/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path ${work}/cbt; proxy_temp_path ${work}/pt; fastcgi_temp_path ${work}/ft; uwsgi_temp_path ${work}/ut; scgi_temp_path ${work}/st;
  server { listen 127.0.0.1:${port} ssl; ssl_certificate ${tls.certFile}; ssl_certificate_key ${tls.keyFile};
    location ~ ^/v2/bench/probe/blobs/sha256:(..)(.*)$ { default_type application/octet-stream; alias ${root}/docker/registry/v2/blobs/sha256/$1/$1$2/data; } } }
`);
  const child = spawn('nginx', ['-p', work, '-c', join(work, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const url = `https://127.0.0.1:${port}`;
  return {
    side: 'anchor', url, host: `127.0.0.1:${port}`, tls: true, auth: false, readyMs: { firstGet: 0 }, dispatcher: agentFor(tls),
    pids: () => [child.pid!, ...childrenOf(child.pid!)],
    async stop() { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); },
  };
}

function childrenOf(pid: number): number[] {
  try { return readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)); } catch { return []; }
}

await main();
