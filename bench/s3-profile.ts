// `npm run bench -- --s3 --profile [--quick] [--s3-config copy5g]`: where berth's time goes on S3. berth alone on the
// Ceph RGW bucket under `node --cpu-prof`, its S3 requests passing through a timing proxy in this process (one HTTP
// hop on loopback: adds a little latency and CPU, so its rates are not the section's), for a skopeo push, a pull
// (redirect off) and a chunked upload. Prints per workload: wall time, berth's CPU, each S3 operation's count, bytes
// and time, and the time during which berth had no request open at the store; then berth's hottest functions.
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { summarizeProfile } from './profile.js';
import { s3Operation } from '../test/support/s3-request-log.js';
import { answersWithBody } from '../src/registry/storage/drivers/s3-client.js';
import { blobDigest, MiB, writeBenchImage } from './data.js';
import { COPY5G, DEFAULTS, s3Sizes } from './s3.js';
import { benchStore, deletePrefix, newPrefix, startBerthS3 } from './s3-stacks.js';
import { cpuSeconds, type Creds, type Tls } from './stacks.js';
import { chunkedUpload, mbPerS, skopeoPull, skopeoPush } from './workloads.js';

interface Call { op: string; path: string; start: number; sent: number; headers: number; end: number; bytesIn: number; bytesOut: number; status: number }

/** The S3 operation of a request (test/support/s3-request-log.ts classifies it for the tests too). */
const opOf = (req: IncomingMessage): string => s3Operation(req.method ?? 'GET', req.url ?? '/', req.headers['x-amz-copy-source'] !== undefined).op;

/** A pass-through HTTP proxy to `target` recording each request's operation, times and bytes. */
async function timingProxy(target: string): Promise<{ url: string; calls: Call[]; close(): Promise<void> }> {
  const calls: Call[] = [];
  const t = new URL(target);
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const c: Call = { op: opOf(req), path: req.url ?? '/', start: performance.now(), sent: 0, headers: 0, end: 0, bytesIn: 0, bytesOut: 0, status: 0 };
    req.on('data', (b: Buffer) => { c.bytesIn += b.length; });
    req.on('end', () => { c.sent = performance.now(); });
    // The same connections berth would use to the store (s3-client.ts answersWithBody): on a kept-alive connection
    // RGW's default frontend would hold those answers ~40 ms, and the profile would time the proxy's connection.
    const fresh = answersWithBody({ method: req.method ?? 'GET', headers: req.headers as Record<string, string> });
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent: fresh ? false : agent }, (r) => {
      c.headers = performance.now(); c.status = r.statusCode ?? 0;
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.on('data', (b: Buffer) => { c.bytesOut += b.length; });
      r.pipe(res);
      r.on('end', () => { c.end = performance.now(); calls.push(c); });
    });
    up.on('error', (e) => { c.end = performance.now(); c.status = 599; calls.push(c); res.destroy(e); });
    req.on('aborted', () => up.destroy());
    req.pipe(up);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, calls, async close() { server.closeAllConnections(); await new Promise((r) => server.close(() => r(undefined))); agent.destroy(); } };
}

/** Seconds within [a, b] covered by at least one call (berth had a request open at the store). */
function covered(calls: Call[], a: number, b: number): number {
  const iv = calls.map((c) => [Math.max(a, c.start), Math.min(b, c.end)] as const).filter(([x, y]) => y > x).sort((p, q) => p[0] - q[0]);
  let total = 0; let cur: [number, number] | undefined;
  for (const [x, y] of iv) {
    if (!cur || x > cur[1]) { if (cur) total += cur[1] - cur[0]; cur = [x, y]; } else cur[1] = Math.max(cur[1], y);
  }
  if (cur) total += cur[1] - cur[0];
  return total / 1000;
}

function phaseReport(name: string, bytes: number, wallS: number, cpuS: number, calls: Call[], a: number, b: number): string {
  const mine = calls.filter((c) => c.start >= a && c.start <= b);
  const by = new Map<string, { n: number; s: number; max: number; mb: number; firstByteS: number; calls: Call[] }>();
  for (const c of mine) {
    const e = by.get(c.op) ?? { n: 0, s: 0, max: 0, mb: 0, firstByteS: 0, calls: [] };
    e.calls.push(c);
    const d = (c.end - c.start) / 1000;
    e.n++; e.s += d; e.max = Math.max(e.max, d); e.mb += (c.bytesIn + c.bytesOut) / 1e6; e.firstByteS += (c.headers - c.start) / 1000;
    by.set(c.op, e);
  }
  const busy = covered(mine, a, b);
  const lines = [
    `${name}: ${wallS.toFixed(1)} s wall, ${mbPerS(bytes, wallS).toFixed(1)} MB/s, berth CPU ${cpuS.toFixed(1)} s (${(cpuS / (bytes / 2 ** 30)).toFixed(2)} s per GiB)`,
    `  a request open at the store ${busy.toFixed(1)} s of ${wallS.toFixed(1)} (no request open: ${(wallS - busy).toFixed(1)} s)`,
    '  (total s: the calls\' durations added up; wall s: the time at least one of them was open)',
    '  op                        count   total s  wall s   max s   MB moved   MB/s per call',
    ...[...by].sort((p, q) => q[1].s - p[1].s).map(([op, e]) =>
      `  ${op.padEnd(24)} ${String(e.n).padStart(6)} ${e.s.toFixed(2).padStart(9)} ${covered(e.calls, a, b).toFixed(2).padStart(7)} ${e.max.toFixed(2).padStart(7)} ${e.mb.toFixed(0).padStart(10)} ${(e.mb > 1 ? (e.mb / e.s).toFixed(0) : '–').padStart(15)}`),
    '',
  ];
  return lines.join('\n');
}

export async function profileS3(o: { dir: string; tls: Tls; creds: Creds; quick: boolean; log: (s: string) => void; out: string; config?: string }): Promise<void> {
  const P = s3Sizes(o.quick);
  const config = o.config === 'copy5g' ? COPY5G : DEFAULTS;
  const s3 = await benchStore(P.osdMiB);
  const proxy = await timingProxy(s3.endpoint);
  const profDir = join(o.dir, 's3-cpuprof');
  const root = newPrefix('prof');
  o.log(`S3 profile: berth under --cpu-prof on ${root}, ${config.label}, S3 requests through ${proxy.url}`);
  const img = await writeBenchImage(join(o.dir, 's3-prof-image'), 43, P.image.layers);
  const digest = await blobDigest(700, P.chunked);
  const berth = await startBerthS3({ dir: o.dir, s3: { ...s3, endpoint: proxy.url }, root, config, tls: o.tls, creds: o.creds, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
  const parts: string[] = [`S3 profile, ${o.quick ? 'quick' : 'full'} sizes, ${config.label}; berth's S3 requests through a timing proxy (one extra loopback hop).`, ''];
  const windows: Array<{ name: string; from: number; to: number }> = [];
  const usNow = () => Number(process.hrtime.bigint() / 1000n);
  const phase = async (name: string, bytes: number, fn: () => Promise<number>) => {
    const cpu0 = cpuSeconds(berth.pids());
    const a = performance.now(); const from = usNow();
    const secs = await fn();
    const b = performance.now();
    windows.push({ name, from, to: usNow() });
    const text = phaseReport(name, bytes, secs, cpuSeconds(berth.pids()) - cpu0, proxy.calls, a, b);
    o.log(text); parts.push(text);
  };
  try {
    await phase(`skopeo push, ${P.image.label} (${(img.wireBytes / 1e6).toFixed(0)} MB)`, img.wireBytes, () => skopeoPush(berth, o.tls, o.creds, img.ref, 'bench/prof'));
    await phase(`skopeo pull, redirect off`, img.wireBytes, () => skopeoPull(berth, o.tls, o.creds, 'bench/prof', o.dir));
    await phase(`${P.chunked / MiB} MiB chunked upload (16 MiB PATCHes)`, P.chunked, () => chunkedUpload(berth, o.creds, 'bench/prof-blob', 700, P.chunked, digest));
  } finally {
    await berth.stop();
    await deletePrefix(s3, root);
    await proxy.close();
    await rm(img.dir, { recursive: true, force: true });
  }
  const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
  if (!files.length) throw new Error(`no .cpuprofile in ${profDir} (berth did not exit cleanly?)`);
  const json = readFileSync(join(profDir, files[0]!), 'utf8');
  for (const w of windows) parts.push(`berth's CPU profile during: ${w.name}`, summarizeProfile(json, 15, w));
  parts.push('berth\'s CPU profile, whole run', summarizeProfile(json, 25));
  await mkdir(o.out, { recursive: true });
  const file = join(o.out, `profile-s3-${config.id}.txt`);
  await writeFile(file, parts.join('\n'));
  // Every S3 request of the run, in order, for reading one layer's sequence (times in ms from the first request).
  const t0 = proxy.calls.reduce((m, c) => Math.min(m, c.start), Infinity);
  await writeFile(join(o.out, `profile-s3-${config.id}-requests.txt`), [...proxy.calls].sort((x, y) => x.start - y.start)
    .map((c) => `${(c.start - t0).toFixed(0).padStart(7)} ${(c.end - c.start).toFixed(0).padStart(6)} ${(c.sent ? c.headers - c.sent : 0).toFixed(0).padStart(5)} ${c.op.padEnd(24)} ${c.status} ${String(c.bytesIn).padStart(9)} ${c.path}`).join('\n') + '\n');
  process.stdout.write(parts.join('\n'));
  o.log(`wrote ${file}`);
}
