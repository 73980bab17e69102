// `node --import tsx bench/memory-probe.ts [--tls] [--seconds 10] [--after 15] [--uploads 4] [--size-mib 1024]
//   [--node-args "..."] [--env "K=V ..."] [--main FILE] [--node BIN] [--phases rps,idle,mono,conc] [--trace] [--debug]`
// berth alone (the built CLI, plain HTTP without auth unless --tls), RSS sampled every 100 ms from
// /proc/PID/status: 64-connection manifest GET load (wrk), then idle (how fast RSS comes back), then N concurrent
// monolithic uploads (mono: one upload alone, its rate and CPU). For the memory targets of issue #16 and A/B runs of V8 flags, allocator settings and builds
// (--node-args / --env / --main). Measures only; loopback; removes its temp dir; kills only the process it spawned.
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BERTH_MAIN } from '../test/support/processes.js';
import { makeTestCert } from '../test/support/tls-certs.js';
import { blobDigest, MiB } from './data.js';
import { agentFor, cpuSeconds, tempDir, type Creds, type Stack, type Tls } from './stacks.js';
import { monolithicUpload, pushSmallImage, wrk } from './workloads.js';

const { values: a } = parseArgs({ options: {
  tls: { type: 'boolean', default: false },
  seconds: { type: 'string', default: '10' },
  after: { type: 'string', default: '15' },
  uploads: { type: 'string', default: '4' },
  'size-mib': { type: 'string', default: '1024' },
  'node-args': { type: 'string', default: '' },
  env: { type: 'string', default: '' },
  main: { type: 'string', default: BERTH_MAIN },
  node: { type: 'string', default: process.execPath },
  phases: { type: 'string', default: 'rps,idle,conc' },
  trace: { type: 'boolean', default: false },   // keep berth's stdout/stderr in the temp dir's berth.log and print its tail
  label: { type: 'string', default: '' },
  debug: { type: 'boolean', default: false },   // log level debug (with --trace: the idle collections' lines)
} });

const kib = (pid: number, key: string): number => {
  try { return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? 0); } catch { return 0; }
};
const mib = (k: number) => Math.round(k / 1024);
const log = (s: string) => process.stderr.write(`[probe ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

async function main(): Promise<void> {
  const dir = await tempDir('berth-memprobe-');
  const phases = new Set(a.phases!.split(','));
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const c = await makeTestCert();
    const tls: Tls = { cert: c.cert, key: c.key, certFile: join(dir, 'd.crt'), keyFile: join(dir, 'd.key'), certDir: dir };
    await writeFile(tls.certFile, c.cert); await writeFile(tls.keyFile, c.key, { mode: 0o600 });
    const creds: Creds = { user: 'u', password: 'p', htpasswdFile: join(dir, 'htpasswd'), header: 'Basic ' + Buffer.from('u:p').toString('base64') };
    if (a.tls) {
      const { execFileSync } = await import('node:child_process');
      execFileSync('htpasswd', ['-B', '-C', '5', '-b', '-c', creds.htpasswdFile, 'u', 'p']);
    }
    const root = join(dir, 'data'); await mkdir(root);
    const conf = join(dir, 'gateway.yml');
    await writeFile(conf, ['listen: 127.0.0.1:0',
      ...(a.tls ? [`tls: { certificate: ${JSON.stringify(tls.certFile)}, key: ${JSON.stringify(tls.keyFile)} }`,
        `auth: { htpasswd: { realm: R, path: ${JSON.stringify(creds.htpasswdFile)} } }`] : []),
      'upstreams: { v2: embedded }', 'registry:', '  storage:', `    filesystem: { rootdirectory: ${JSON.stringify(root)} }`,
      '    maintenance: { uploadpurging: { enabled: false } }', `log: { level: ${a.debug ? 'debug' : 'info'} }`, ''].join('\n'));
    const env = { ...process.env };
    for (const kv of a.env!.split(' ').filter(Boolean)) { const i = kv.indexOf('='); env[kv.slice(0, i)] = kv.slice(i + 1); }
    const out = createWriteStream(join(dir, 'berth.log'));
    child = spawn(a.node!, [...a['node-args']!.split(' ').filter(Boolean), a.main!, 'serve', '--config', conf], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid!;
    let head = '';
    const url = await new Promise<string>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no listening line: ${head}`)), 30_000);
      const on = (b: Buffer) => { head += b.toString(); const m = head.match(/listening on (https?:\/\/\S+)/); if (m) { clearTimeout(t); res(m[1]!.replace(/\/$/, '')); } };
      child!.stdout!.on('data', on); child!.stderr!.on('data', on);
      child!.once('exit', (code) => { clearTimeout(t); rej(new Error(`berth exited ${code}: ${head}`)); });
    });
    if (a.trace) { child.stdout!.pipe(out); child.stderr!.pipe(out); } else { child.stdout!.resume(); child.stderr!.resume(); }
    const stack: Stack = { side: 'berth', url, host: new URL(url).host, tls: a.tls!, auth: a.tls!, readyMs: { firstGet: 0 },
      dispatcher: agentFor(a.tls ? tls : null), pids: () => [pid], stop: async () => undefined };
    const rss = () => mib(kib(pid, 'VmRSS'));
    const idleStart = rss();
    await pushSmallImage(stack, creds, 'probe/small');
    const result: Record<string, unknown> = { label: a.label, node: a.node, nodeArgs: a['node-args'], env: a.env, tls: a.tls, idle: idleStart };

    let peak = 0; let sampling = true;
    const samples: number[] = [];
    const sampler = (async () => { while (sampling) { const r = rss(); peak = Math.max(peak, r); samples.push(r); await new Promise((r) => setTimeout(r, 100)); } })();
    const resetHwm = () => { try { writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch { /* kernel refuses */ } };

    if (phases.has('rps')) {
      peak = 0; resetHwm(); const cpu0 = cpuSeconds([pid]);
      const w = await wrk(stack, creds, '/v2/probe/small/manifests/latest', 'GET', { connections: 64, threads: 2, seconds: Number(a.seconds), scratch: join(dir, 'wrk') });
      result.rps = Math.round(w.rps); result.rpsPeak = Math.max(peak, mib(kib(pid, 'VmHWM'))); result.rpsEnd = rss(); result.rpsCpuS = +(cpuSeconds([pid]) - cpu0).toFixed(1);
    }
    if (phases.has('idle')) {
      const after: Record<string, number> = {};
      const t0 = Date.now(); const secs = Number(a.after);
      for (let s = 1; s <= secs; s++) { await new Promise((r) => setTimeout(r, t0 + s * 1000 - Date.now())); if ([1, 2, 3, 5, 8, 12, 15, 20, 30].includes(s) || s === secs) after[`+${s}s`] = rss(); }
      result.after = after;
    }
    if (phases.has('mono')) {   // one upload alone: its rate and server CPU (A/B of the upload-time tuning)
      const size = Number(a['size-mib']) * MiB; const d = await blobDigest(299, size);
      const cpu0 = cpuSeconds([pid]); const t = performance.now();
      await monolithicUpload(stack, creds, 'probe/mono', 299, size, d);
      result.mono = { MBps: Math.round(size / 1e6 / ((performance.now() - t) / 1000)), cpuS: +(cpuSeconds([pid]) - cpu0).toFixed(2) };
    }
    if (phases.has('conc')) {
      const n = Number(a.uploads); const size = Number(a['size-mib']) * MiB;
      const digests: string[] = []; for (let i = 0; i < n; i++) digests.push(await blobDigest(300 + i, size));
      const before = rss(); peak = 0; resetHwm(); const cpu0 = cpuSeconds([pid]);
      const t = performance.now();
      await Promise.all(digests.map((d, i) => monolithicUpload(stack, creds, `probe/conc${i}`, 300 + i, size, d)));
      const secs = (performance.now() - t) / 1000;
      result.conc = { before, peak: Math.max(peak, mib(kib(pid, 'VmHWM'))), end: rss(), MBps: Math.round(n * size / 1e6 / secs), cpuS: +(cpuSeconds([pid]) - cpu0).toFixed(1) };
      await new Promise((r) => setTimeout(r, 5000));
      (result.conc as Record<string, number>)['+5s'] = rss();
    }
    sampling = false; await sampler;
    await stack.dispatcher.close();
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    if (child?.pid && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }
    if (a.trace) { try { const l = readFileSync(join(dir, 'berth.log'), 'utf8'); process.stderr.write(l.split('\n').filter((x) => !x.startsWith('{') || /idle|gc tuning/.test(x)).slice(-400).join('\n') + '\n'); } catch { /* none */ } }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

main().catch((e) => { log(String(e?.stack ?? e)); process.exitCode = 1; });
