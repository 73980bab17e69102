// Starts the two stacks the benchmark compares, on loopback only, each in its own temp dir: berth (the built
// CLI, TLS + htpasswd) and the classic stack (nginx per Distribution's nginx recipe → Distribution 2.8 with a
// redis blob-descriptor cache). Measures their processes through /proc (CPU ticks, VmRSS/VmHWM). It kills
// only the PIDs it spawned and removes only the dirs it made; it never changes the servers' code or config.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { BERTH_MAIN, REPO_ROOT } from '../test/support/processes.js';

export interface Tls { cert: string; key: string; certFile: string; keyFile: string; certDir: string }
export interface Creds { user: string; password: string; htpasswdFile: string; header: string }

export interface Stack {
  side: 'berth' | 'anchor';
  url: string;                      // https://127.0.0.1:PORT (or http:// for berth without TLS)
  host: string;
  tls: boolean;
  auth: boolean;
  readyMs: { line?: number; firstGet: number };
  dispatcher: Agent;
  /** PIDs whose CPU and memory count for this side (nginx workers looked up each time). */
  pids(): number[];
  stop(): Promise<void>;
}

// ---------- processes ----------

const live = new Set<ChildProcess>();
// On a crash, SIGKILL what we spawned, children first (nginx workers would outlive a SIGKILLed master).
process.once('exit', () => {
  for (const c of live) {
    if (c.exitCode !== null || c.signalCode !== null || !c.pid) continue;
    for (const pid of [...childrenOf(c.pid), c.pid]) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
});

export interface Proc { child: ChildProcess; pid: number; out(): string; mute(): void; exited: Promise<void>; waitFor(re: RegExp, ms: number): Promise<RegExpMatchArray>; stop(sig?: NodeJS.Signals): Promise<void> }

/** `o.env` replaces the environment; `o.logFile` receives everything the process prints (also after mute()). */
export function spawnProc(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; logFile?: string } = {}): Proc {
  const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...(o.env ? { env: o.env } : {}) });
  if (o.logFile) { const f = createWriteStream(o.logFile); child.stdout!.pipe(f); child.stderr!.pipe(f, { end: false }); }
  live.add(child);
  let tail = ''; let watching = true;
  const waiters = new Set<() => void>();
  const onData = (c: string) => { if (!watching) return; tail = (tail + c).slice(-64 * 1024); for (const w of waiters) w(); };
  child.stdout!.setEncoding('utf8').on('data', onData);
  child.stderr!.setEncoding('utf8').on('data', onData);
  const exited = new Promise<void>((res) => child.once('exit', () => { live.delete(child); for (const w of waiters) w(); res(); }));
  child.once('error', () => { /* reported through exit/wait */ });
  const p: Proc = {
    child, pid: child.pid ?? -1, exited, out: () => tail, mute: () => { watching = false; },
    waitFor(re, ms) {
      return new Promise((res, rej) => {
        const t = setTimeout(() => { waiters.delete(check); rej(new Error(`${cmd}: no ${re} after ${ms} ms\n${tail.slice(-3000)}`)); }, ms);
        const check = () => {
          const m = tail.match(re);
          if (m) { clearTimeout(t); waiters.delete(check); res(m); return; }
          if (child.exitCode !== null || child.signalCode !== null) { clearTimeout(t); waiters.delete(check); rej(new Error(`${cmd} exited (${child.exitCode ?? child.signalCode})\n${tail.slice(-3000)}`)); }
        };
        waiters.add(check); check();
      });
    },
    async stop(sig = 'SIGTERM') {
      watching = false;
      if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
      process.kill(child.pid, sig);
      const t = setTimeout(() => { if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL'); }, 10_000);
      await exited; clearTimeout(t);
    },
  };
  return p;
}

// ---------- /proc measurements ----------

export const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; } })();

export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');   // fields from #3 (state) on
      ticks += Number(f[11]) + Number(f[12]);                    // #14 utime, #15 stime
    } catch { /* exited */ }
  }
  return ticks / CLK_TCK;
}

/** Sum of VmRSS over `pids`, MiB. */
export function rssMiB(pids: number[]): number { return pids.reduce((a, p) => a + statusKiB(p, 'VmRSS'), 0) / 1024; }

function statusKiB(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

/** Resets each process's VmHWM (`echo 5 > /proc/PID/clear_refs`); false when the kernel refuses. */
function resetHwm(pids: number[]): boolean {
  let ok = true;
  for (const pid of pids) { try { writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch { ok = false; } }
  return ok;
}

export interface Meter { stop(): void; result(): { cpuS: number; peakRssMiB: number } }

/** CPU seconds and peak RSS of a stack between start and stop: the sum of VmHWM (reset at start) over its
 *  processes (exact for one process, an upper bound for several), or sampled VmRSS sums when HWM can't reset. */
export function meter(stack: Stack): Meter {
  const pids = stack.pids();
  const cpu0 = cpuSeconds(pids);
  const hwmOk = resetHwm(pids);
  let sampled = 0;
  const sample = () => { sampled = Math.max(sampled, stack.pids().reduce((a, p) => a + statusKiB(p, 'VmRSS'), 0)); };
  sample();
  const t = setInterval(sample, 50);
  let res: { cpuS: number; peakRssMiB: number } | undefined;
  return {
    stop() {
      if (res) return;
      clearInterval(t); sample();
      const now = stack.pids();
      const hwm = hwmOk ? now.reduce((a, p) => a + statusKiB(p, 'VmHWM'), 0) : 0;
      res = { cpuS: cpuSeconds(now) - cpu0, peakRssMiB: Math.max(hwm, sampled) / 1024 };
    },
    result() { this.stop(); return res!; },
  };
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const c = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (c) out.push(...c.split(/\s+/).map(Number));
    }
  } catch { /* gone */ }
  return out;
}

// ---------- HTTP helpers ----------

export function agentFor(tls: Tls | null, connections = 64): Agent {
  return new Agent({ connections, keepAliveTimeout: 30_000, connect: tls ? { ca: tls.cert, rejectUnauthorized: true } : {}, bodyTimeout: 0, headersTimeout: 600_000 });
}

async function probe(url: string, d: Agent, header: string | undefined, deadline: number): Promise<void> {
  for (;;) {
    try {
      const r = await request(`${url}/v2/`, { dispatcher: d, headers: header ? { authorization: header } : {} });
      await r.body.dump();
      if (r.statusCode === 200) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`${url}/v2/ did not answer 200`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const randomPort = () => 20_000 + Math.floor(Math.random() * 40_000);
const addrInUse = (e: unknown) => /address already in use|EADDRINUSE|Address in use|\(98:/i.test(String(e));

// ---------- berth ----------

/** The node flags berth is started with: Node 24's young generation capped at Node 20's size (16 MiB semi-spaces
 *  instead of 64: peak RSS under the 64-connection load -55 to -65 MiB; no start cost on Node 24, whose V8 keeps
 *  Node's code cache with heap-size flags). See bench/RESULTS.md, "Node 24: memory". */
export const BERTH_LAUNCH_FLAGS = ['--max-semi-space-size=16'];
export function berthLaunchFlags(): string[] {
  const env = process.env.BENCH_BERTH_NODE_ARGS;
  return env === undefined ? BERTH_LAUNCH_FLAGS : env.split(' ').filter(Boolean);
}

/** berth on `o.root` (filesystem), or on the driver `o.storage` names (lines under `registry.storage:` in place of
 *  the filesystem line, e.g. an s3 block and `redirect:`; bench/s3-stacks.ts). */
export async function startBerth(o: { dir: string; root: string; tls: Tls; creds: Creds; secure: boolean; logLevel: string; nodeArgs?: string[]; storage?: string[]; logFile?: string }): Promise<Stack> {
  await mkdir(o.root, { recursive: true });
  const conf = join(o.dir, `gateway-${Date.now()}.yml`);
  await writeFile(conf, [
    'listen: 127.0.0.1:0',
    ...(o.secure ? [
      `tls: { certificate: ${JSON.stringify(o.tls.certFile)}, key: ${JSON.stringify(o.tls.keyFile)} }`,
      `auth: { htpasswd: { realm: Registry Realm, path: ${JSON.stringify(o.creds.htpasswdFile)} } }`,
    ] : []),
    'upstreams: { v2: embedded }',
    'registry:',
    '  storage:',
    ...(o.storage ?? [`    filesystem: { rootdirectory: ${JSON.stringify(o.root)} }`]),
    '    delete: { enabled: true }',
    '    maintenance: { uploadpurging: { enabled: false } }',
    `log: { level: ${o.logLevel} }`,
    '',
  ].join('\n'));
  const t0 = performance.now();
  // A/B runs (bench/RESULTS.md): BENCH_BERTH_NODE_ARGS replaces the launch flags (BERTH_LAUNCH_FLAGS; '' for
  // none); BENCH_BERTH_MAIN runs another build's bundle (a copy under dist/, so node_modules resolve).
  const main = process.env.BENCH_BERTH_MAIN ?? BERTH_MAIN;
  const p = spawnProc(process.execPath, [...berthLaunchFlags(), ...(o.nodeArgs ?? []), main, 'serve', '--config', conf], { logFile: o.logFile });
  const m = await p.waitFor(/listening on (https?:\/\/[^\s"',]+)/, 30_000);
  const line = performance.now() - t0;
  const url = m[1]!.replace(/\/$/, '');
  const tls = url.startsWith('https:');
  const d = agentFor(tls ? o.tls : null);
  await probe(url, d, o.secure ? o.creds.header : undefined, Date.now() + 30_000);
  const firstGet = performance.now() - t0;
  p.mute();   // it logs a line per request: stop keeping it
  return {
    side: 'berth', url, host: new URL(url).host, tls, auth: o.secure, readyMs: { line, firstGet }, dispatcher: d,
    pids: () => [p.pid],
    async stop() { await d.close(); await p.stop(); },
  };
}

/** Does this berth build accept the tls/auth keys and serve https with a 401 challenge? */
export async function berthSupportsTlsAuth(o: { dir: string; tls: Tls; creds: Creds }): Promise<{ ok: boolean; why?: string }> {
  let s: Stack | undefined;
  try {
    s = await startBerth({ ...o, root: join(o.dir, 'probe-root'), secure: true, logLevel: 'warn' });
    if (!s.tls) return { ok: false, why: 'berth does not serve TLS yet (listening on http)' };
    const r = await request(`${s.url}/v2/`, { dispatcher: s.dispatcher });
    await r.body.dump();
    if (r.statusCode !== 401) return { ok: false, why: `berth answered ${r.statusCode} without credentials (auth not wired yet)` };
    return { ok: true };
  } catch (e) {
    return { ok: false, why: String(e).split('\n').slice(0, 4).join(' ') };
  } finally {
    await s?.stop();
    await rm(join(o.dir, 'probe-root'), { recursive: true, force: true });
  }
}

// ---------- classic stack: redis + Distribution + nginx ----------

function nginxConf(prefix: string, port: number, registryPort: number, tls: Tls, creds: Creds): string {
  const root = process.getuid?.() === 0;
  // Distribution's nginx recipe (docs/deploying "Authenticate proxy with nginx"), verbatim where it matters;
  // only paths, ports and the worker user (we run as root) differ.
  return `${root ? 'user root;\n' : ''}worker_processes auto;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log;

events {
    worker_connections  1024;
}

http {
  access_log ${prefix}/access.log;
  client_body_temp_path ${prefix}/client_body_temp;
  proxy_temp_path ${prefix}/proxy_temp;
  fastcgi_temp_path ${prefix}/fastcgi_temp;
  uwsgi_temp_path ${prefix}/uwsgi_temp;
  scgi_temp_path ${prefix}/scgi_temp;

  upstream docker-registry {
    server 127.0.0.1:${registryPort};
  }

  ## Set a variable to help us decide if we need to add the
  ## 'Docker-Distribution-Api-Version' header.
  ## The registry always sets this header.
  ## In the case of nginx performing auth, the header is unset
  ## since nginx is auth-ing before proxying.
  map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {
    '' 'registry/2.0';
  }

  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;

    # SSL
    ssl_certificate ${tls.certFile};
    ssl_certificate_key ${tls.keyFile};

    # Recommendations from https://raymii.org/s/tutorials/Strong_SSL_Security_On_nginx.html
    ssl_protocols TLSv1.1 TLSv1.2;
    ssl_ciphers 'EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH';
    ssl_prefer_server_ciphers on;
    ssl_session_cache shared:SSL:10m;

    # disable any limits to avoid HTTP 413 for large image uploads
    client_max_body_size 0;

    # required to avoid HTTP 411: see Issue #1486 (https://github.com/moby/moby/issues/1486)
    chunked_transfer_encoding on;

    location /v2/ {
      # Do not allow connections from docker 1.5 and earlier
      # docker pre-1.6.0 did not properly set the user agent on ping, catch "Go *" user agents
      if ($http_user_agent ~ "^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$" ) {
        return 404;
      }

      # To add basic authentication to v2 use auth_basic setting.
      auth_basic "Registry realm";
      auth_basic_user_file ${creds.htpasswdFile};

      ## If $docker_distribution_api_version is empty, the header is not added.
      ## See the map directive above where this variable is defined.
      add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;

      proxy_pass                          http://docker-registry;
      proxy_set_header  Host              $http_host;   # required for docker client's sake
      proxy_set_header  X-Real-IP         $remote_addr; # pass on real client's IP
      proxy_set_header  X-Forwarded-For   $proxy_add_x_forwarded_for;
      proxy_set_header  X-Forwarded-Proto $scheme;
      proxy_read_timeout                  900;
    }
  }
}
`;
}

function distributionConf(root: string, port: number, redisPort: number): string {
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(root)}`,
    '  cache:',
    '    blobdescriptor: redis',
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: berth-bench-secret',
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    'redis:',
    `  addr: 127.0.0.1:${redisPort}`,
    '  dialtimeout: 1s',
    '  readtimeout: 1s',
    '  writetimeout: 1s',
    '  pool:',                                   // the docs' example pool (without it, no idle connections are kept)
    '    maxidle: 16',
    '    maxactive: 64',
    '    idletimeout: 300s',
    '',
  ].join('\n');
}

/** Starts redis, Distribution and nginx at once (as a compose file would) on random free loopback ports
 *  (retrying the whole set on EADDRINUSE); ready when GET /v2/ through nginx with credentials answers 200. */
export async function startAnchor(o: { dir: string; root: string; tls: Tls; creds: Creds }): Promise<Stack> {
  for (let attempt = 1; ; attempt++) {
    const work = await mkdtemp(join(o.dir, 'anchor-'));
    const [redisPort, regPort, nginxPort] = [randomPort(), randomPort(), randomPort()];
    await mkdir(o.root, { recursive: true });
    await mkdir(join(work, 'redis'));
    await writeFile(join(work, 'config.yml'), distributionConf(o.root, regPort, redisPort));
    await writeFile(join(work, 'nginx.conf'), nginxConf(work, nginxPort, regPort, o.tls, o.creds));
    const url = `https://127.0.0.1:${nginxPort}`;
    const d = agentFor(o.tls);
    const t0 = performance.now();
    const redis = spawnProc('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', join(work, 'redis'), '--daemonize', 'no', '--pidfile', join(work, 'redis.pid'), '--logfile', '']);
    const registry = spawnProc('docker-registry', ['serve', join(work, 'config.yml')]);
    const nginx = spawnProc('nginx', ['-p', work, '-c', join(work, 'nginx.conf'), '-e', join(work, 'error.log'), '-g', 'daemon off;']);
    const procs = [nginx, registry, redis];
    const stopAll = async () => { await d.close(); await Promise.all(procs.map((p) => p.stop())); };
    try {
      await Promise.race([
        probe(url, d, o.creds.header, Date.now() + 30_000),
        ...procs.map((p) => p.exited.then(() => {
          const log = p === nginx ? safeRead(join(work, 'error.log')) : p.out();
          throw new Error(`${p.child.spawnfile} exited early: ${log.slice(-2000)}`);
        })),
      ]);
    } catch (e) {
      await stopAll();
      await rm(work, { recursive: true, force: true });
      if (attempt < 10 && addrInUse(e)) continue;
      throw e;
    }
    const firstGet = performance.now() - t0;
    for (const p of procs) p.mute();
    return {
      side: 'anchor', url, host: new URL(url).host, tls: true, auth: true, readyMs: { firstGet }, dispatcher: d,
      pids: () => [nginx.pid, ...childrenOf(nginx.pid), registry.pid, redis.pid],
      async stop() { await stopAll(); await rm(work, { recursive: true, force: true }); },
    };
  }
}

function safeRead(f: string): string { try { return readFileSync(f, 'utf8'); } catch { return ''; } }

export async function tempDir(prefix: string): Promise<string> { return mkdtemp(join(tmpdir(), prefix)); }
