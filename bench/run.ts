// `npm run bench [-- --quick] [--repeats N] [--profile] [--s3] [--skip-s3]`: berth (built CLI, TLS + htpasswd) against
// the classic stack (nginx per Distribution's recipe → Distribution 2.8.2 + redis cache), side by side, same machine,
// same run. Prints a markdown table and writes bench-results/latest.{json,md}. `--s3`: only the S3 section
// (bench/s3.ts: berth and Distribution on the tests' Ceph RGW, started if it is not running), written to
// bench-results/latest-s3.{json,md}; with --profile, berth on S3 under --cpu-prof with its S3 requests timed
// (bench/s3-profile.ts). `--quick` runs the filesystem workloads, then a small S3 section (CI; --skip-s3 leaves it
// out). Measures only: asserts no thresholds, changes nothing in src/. Needs the Debian tools from
// scripts/bench-deps.sh. All servers on loopback, temp dirs.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { run } from '../test/support/clients.js';
import { REPO_ROOT } from '../test/support/processes.js';
import { makeTestCert } from '../test/support/tls-certs.js';
import { blobDigest, MiB, writeBenchImage, type BenchImage, type LayerSize } from './data.js';
import { berthLaunchFlags, berthSupportsTlsAuth, meter, rssMiB, startAnchor, startBerth, tempDir, type Creds, type Stack, type Tls } from './stacks.js';
import { blobGet, chunkedUpload, mbPerS, monolithicUpload, pushSmallImage, skopeoPull, skopeoPush, headLoad, wrk } from './workloads.js';
import { summarizeProfile } from './profile.js';
import { runS3Section, s3Markdown, s3RowLine } from './s3.js';
import { profileS3 } from './s3-profile.js';

const { values: args } = parseArgs({ options: {
  quick: { type: 'boolean', default: false },
  repeats: { type: 'string' },
  profile: { type: 'boolean', default: false },     // berth under --cpu-prof, manifest GET only; prints hot functions
  s3: { type: 'boolean', default: false },          // only the S3 section (full sizes unless --quick)
  'skip-s3': { type: 'boolean', default: false },   // --quick without its S3 section
  's3-config': { type: 'string' },                  // with --s3 --profile: copy5g (multipartcopythresholdsize 5 GiB)
  'profile-head': { type: 'boolean', default: false }, // with --profile: blob HEAD (undici loader) instead
  only: { type: 'string' },                          // comma-separated workload ids (debugging)
  out: { type: 'string', default: join(REPO_ROOT, 'bench-results') },
} });

const quick = args.quick!;
const R = Number(args.repeats ?? (quick ? 1 : 3));
const layersOf = (n: number, randomMiB: number, textMiB: number): LayerSize[] => Array.from({ length: n }, () => ({ randomMiB, textMiB }));
const P = quick
  ? { images: [{ id: 'img', label: '~6 MB image, 3 layers', layers: layersOf(3, 2, 1) }], blob: 32 * MiB, wrkSeconds: 2, startRepeats: 1, conc: 32 * MiB }
  : { images: [
      { id: 'img150', label: '~150 MB image, 5 layers', layers: layersOf(5, 28, 8) },
      { id: 'img1g', label: '~1 GB image, 10 layers', layers: layersOf(10, 95, 12) },
    ], blob: 1024 * MiB, wrkSeconds: 10, startRepeats: 3, conc: 1024 * MiB };
const only = args.only ? new Set(args.only.split(',')) : null;
const want = (id: string) => !only || only.has(id);

interface Side { values: number[]; cpuS: number[]; peakRssMiB: number[]; extra?: unknown[] }
interface Row { id: string; title: string; unit: string; higherIsBetter: boolean; berth: Side; anchor: Side; note?: string }

const median = (xs: number[]) => { if (!xs.length) return NaN; const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

async function main(): Promise<void> {
  const t0 = Date.now();
  const dir = await tempDir('berth-bench-');
  const stacks: Stack[] = [];
  const cleanup = async () => { for (const s of stacks.splice(0)) await s.stop().catch(() => undefined); await rm(dir, { recursive: true, force: true, maxRetries: 3 }); };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { void cleanup().finally(() => process.exit(130)); });
  try {
    // ---- fixtures: one cert (trusted by clients as the CA), one htpasswd (bcrypt cost 5, as `htpasswd -B`)
    const c = await makeTestCert();
    const tls: Tls = { cert: c.cert, key: c.key, certFile: join(dir, 'domain.crt'), keyFile: join(dir, 'domain.key'), certDir: join(dir, 'certs.d') };
    await writeFile(tls.certFile, c.cert); await writeFile(tls.keyFile, c.key, { mode: 0o600 });
    await mkdir(tls.certDir); await writeFile(join(tls.certDir, 'ca.crt'), c.cert);
    const password = 'bench-' + Math.random().toString(36).slice(2);
    const creds: Creds = { user: 'bench', password, htpasswdFile: join(dir, 'htpasswd'), header: 'Basic ' + Buffer.from(`bench:${password}`).toString('base64') };
    await run('htpasswd', ['-B', '-C', '5', '-b', '-c', creds.htpasswdFile, creds.user, password]);

    const probe = await berthSupportsTlsAuth({ dir, tls, creds });
    const secure = probe.ok;
    if (!secure) log(`berth TLS/htpasswd not available, benchmarking berth over plain HTTP without auth: ${probe.why}`);
    const logLevel = 'info';
    const profDir = join(dir, 'cpuprof');
    const berthOpts = { dir, root: '', tls, creds, secure, logLevel, nodeArgs: args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [] };

    if (args.profile && args.s3) { await profileS3({ dir, tls, creds, quick, log, out: args.out!, config: args['s3-config'] }); return; }
    if (args.profile) { await profile(berthOpts, creds, dir, profDir); return; }
    if (args.s3) { await s3Section(dir, tls, creds); return; }

    const rows: Row[] = [];
    const sides = (r: number): Array<'berth' | 'anchor'> => (r % 2 === 0 ? ['berth', 'anchor'] : ['anchor', 'berth']);

    // ---- 4b. start to ready (own instances, fresh storage each time)
    if (want('start')) {
      const row: Row = { id: 'start', title: 'start to ready (spawn → first 200 on GET /v2/)', unit: 'ms', higherIsBetter: false, berth: blank(), anchor: blank() };
      // One discarded start per side first. On this VM the first process start after a burst of other work
      // (`npm run build` runs right before) is 40-100 ms slower for any binary: `node -e 0` takes 110-125 ms
      // then, 70-80 ms once warm; berth's first start after a build measured 241/235 ms vs 163-175 for the
      // next ones, with filesystem and in-memory storage alike (so not berth's own I/O).
      for (const side of ['berth', 'anchor'] as const) {
        const s = side === 'berth'
          ? await startBerth({ ...berthOpts, root: join(dir, 'start-warmup-b'), nodeArgs: [] })
          : await startAnchor({ dir, tls, creds, root: join(dir, 'start-warmup-a') });
        await s.stop();
      }
      for (let r = 0; r < P.startRepeats; r++) {
        for (const side of sides(r)) {
          const s = side === 'berth'
            ? await startBerth({ ...berthOpts, root: join(dir, `start-b${r}`), nodeArgs: [] })
            : await startAnchor({ dir, tls, creds, root: join(dir, `start-a${r}`) });
          row[side].values.push(s.readyMs.firstGet);
          (row[side].extra ??= []).push(s.readyMs);
          await s.stop();
        }
      }
      row.note = `berth's "listening on" line: ${median(row.berth.extra!.map((x) => (x as { line: number }).line)).toFixed(0)} ms`;
      rows.push(row); log(fmtRow(row));
    }

    // ---- the two stacks for everything else
    const berth = await startBerth({ ...berthOpts, root: join(dir, 'berth-data') });
    stacks.push(berth);
    const anchor = await startAnchor({ dir, tls, creds, root: join(dir, 'anchor-data') });
    stacks.push(anchor);
    const S = { berth, anchor };
    log(`berth ${berth.url} (pid ${berth.pids()[0]}), classic ${anchor.url} (pids ${anchor.pids().join(' ')})`);

    const measure = async (row: Row, r: number, fn: (s: Stack) => Promise<number>) => {
      for (const side of sides(r)) {
        const m = meter(S[side]);
        let v: number;
        try { v = await fn(S[side]); } finally { m.stop(); }
        const { cpuS, peakRssMiB } = m.result();
        row[side].values.push(v); row[side].cpuS.push(cpuS); row[side].peakRssMiB.push(peakRssMiB);
      }
    };

    // ---- 1. skopeo push and pull
    for (const spec of P.images) {
      if (!want(spec.id)) continue;
      log(`generating ${spec.label}`);
      const img: BenchImage = await writeBenchImage(join(dir, `image-${spec.id}`), spec.id.length * 7 + 1, spec.layers);
      const mb = (img.wireBytes / 1e6).toFixed(0);
      const push: Row = { id: `${spec.id}-push`, title: `skopeo push, ${spec.label} (${mb} MB)`, unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank() };
      const pull: Row = { id: `${spec.id}-pull`, title: `skopeo pull, ${spec.label} (${mb} MB)`, unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank() };
      for (let r = 0; r < R; r++) {
        await measure(push, r, async (s) => mbPerS(img.wireBytes, await skopeoPush(s, tls, creds, img.ref, `bench/${spec.id}-r${r}`)));
        await measure(pull, r, async (s) => mbPerS(img.wireBytes, await skopeoPull(s, tls, creds, `bench/${spec.id}-r${r}`, dir)));
      }
      rows.push(push, pull); log(fmtRow(push)); log(fmtRow(pull));
      await rm(img.dir, { recursive: true, force: true });
    }

    // ---- 2. one big blob: monolithic, chunked (16 MiB PATCHes), GET
    if (want('blob')) {
      const size = P.blob;
      const label = size >= 1024 * MiB ? `${size / 1024 / MiB} GiB` : `${size / MiB} MiB`;
      log(`hashing ${2 * R} generated ${label} blobs`);
      const mono: string[] = []; const chunked: string[] = [];
      for (let r = 0; r < R; r++) { mono.push(await blobDigest(100 + r, size)); chunked.push(await blobDigest(200 + r, size)); }
      const rm1: Row = { id: 'blob-mono', title: `${label} blob, monolithic upload (POST + PUT ?digest=)`, unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank() };
      const rc: Row = { id: 'blob-chunked', title: `${label} blob, chunked upload (16 MiB PATCHes)`, unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank() };
      const rg: Row = { id: 'blob-get', title: `${label} blob, GET`, unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank() };
      for (let r = 0; r < R; r++) {
        await measure(rm1, r, async (s) => mbPerS(size, await monolithicUpload(s, creds, 'bench/blob', 100 + r, size, mono[r]!)));
        await measure(rc, r, async (s) => mbPerS(size, await chunkedUpload(s, creds, 'bench/blob', 200 + r, size, chunked[r]!)));
        await measure(rg, r, async (s) => mbPerS(size, await blobGet(s, tls, creds, 'bench/blob', mono[r]!, size)));
      }
      rows.push(rm1, rc, rg); log(fmtRow(rm1)); log(fmtRow(rc)); log(fmtRow(rg));
    }

    // ---- 3. request rates: manifest GET by tag, blob HEAD (wrk, 64 keep-alive connections, auth on each)
    if (want('rps')) {
      const small = { berth: await pushSmallImage(berth, creds, 'bench/small'), anchor: await pushSmallImage(anchor, creds, 'bench/small') };
      const rmf: Row = { id: 'manifest-get', title: 'manifest GET by tag (wrk, 64 connections)', unit: 'req/s', higherIsBetter: true, berth: blank(), anchor: blank() };
      const rh: Row = { id: 'blob-head', title: 'blob HEAD (raw keep-alive loader, 64 connections)', unit: 'req/s', higherIsBetter: true, berth: blank(), anchor: blank() };
      const w = { connections: 64, threads: 2, seconds: P.wrkSeconds, scratch: join(dir, 'wrk') };
      for (let r = 0; r < R; r++) {
        // RSS before the load and 5 s after it (the idle collection's first chance: idle-gc.ts), in the side's
        // own measure, so its CPU and peak include the wait (idle: nothing to add).
        await measure(rmf, r, async (s) => {
          const before = rssMiB(s.pids());
          const rps = (await wrk(s, creds, '/v2/bench/small/manifests/latest', 'GET', w)).rps;
          await new Promise((res) => setTimeout(res, 5000));
          (rmf[s.side].extra ??= []).push({ before, after5s: rssMiB(s.pids()) });
          return rps;
        });
        await measure(rh, r, async (s) => (await headLoad(s, creds, `/v2/bench/small/blobs/${small[s.side].blobDigest}`, { ...w, tls })).rps);
      }
      const rss = (x: Side, k: 'before' | 'after5s') => median(x.extra!.map((e) => (e as Record<string, number>)[k]!)).toFixed(0);
      rmf.note = `RSS MiB before the load → 5 s after it: berth ${rss(rmf.berth, 'before')} → ${rss(rmf.berth, 'after5s')}, classic ${rss(rmf.anchor, 'before')} → ${rss(rmf.anchor, 'after5s')}`;
      rows.push(rmf, rh); log(fmtRow(rmf)); log(fmtRow(rh));
    }

    // ---- 4a. peak RSS while 4 clients upload big blobs at once
    if (want('conc')) {
      const size = P.conc;
      const label = size >= 1024 * MiB ? `${size / 1024 / MiB} GiB` : `${size / MiB} MiB`;
      const digests: string[] = []; for (let i = 0; i < 4; i++) digests.push(await blobDigest(300 + i, size));
      const row: Row = { id: 'conc-rss', title: `peak RSS, 4 concurrent ${label} monolithic uploads`, unit: 'MiB', higherIsBetter: false, berth: blank(), anchor: blank() };
      for (let r = 0; r < R; r++) {
        for (const side of sides(r)) {
          const s = S[side];
          const m = meter(s);
          const t = performance.now();
          try { await Promise.all(digests.map((d, i) => monolithicUpload(s, creds, `bench/conc${i}`, 300 + i, size, d))); } finally { m.stop(); }
          const secs = (performance.now() - t) / 1000;
          const { cpuS, peakRssMiB } = m.result();
          row[side].values.push(peakRssMiB); row[side].cpuS.push(cpuS); row[side].peakRssMiB.push(peakRssMiB);
          (row[side].extra ??= []).push({ aggregateMBps: mbPerS(4 * size, secs) });
        }
      }
      const agg = (x: Side) => median(x.extra!.map((e) => (e as { aggregateMBps: number }).aggregateMBps)).toFixed(0);
      row.note = `aggregate upload rate: berth ${agg(row.berth)} MB/s, classic ${agg(row.anchor)} MB/s`;
      rows.push(row); log(fmtRow(row));
    }

    // ---- report
    const result = {
      date: new Date().toISOString(), mode: quick ? 'quick' : 'full', repeats: R, durationS: (Date.now() - t0) / 1000,
      machine: machine(), versions: versions(),
      berth: { url: berth.url, tls: berth.tls, htpasswd: berth.auth, note: secure ? undefined : `plain HTTP, no auth: ${probe.why}` },
      rows: rows.map((r) => ({ ...r, berthMedian: median(r.berth.values), anchorMedian: median(r.anchor.values), ratio: median(r.berth.values) / median(r.anchor.values) })),
    };
    const md = markdown(result.rows, result, secure);
    await mkdir(args.out!, { recursive: true });
    await writeFile(join(args.out!, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
    await writeFile(join(args.out!, 'latest.md'), md);
    process.stdout.write(md);
    log(`done in ${result.durationS.toFixed(0)} s; wrote ${join(args.out!, 'latest.json')} and latest.md`);
    if (quick && !args['skip-s3']) {
      for (const s of stacks.splice(0)) await s.stop();
      // Outside CI a machine without Ceph (no root for apt-get, no packages) skips the S3 part, as the tests do.
      await s3Section(dir, tls, creds).catch((e: Error & { code?: string }) => {
        if (e.code !== 'BENCH_NO_STORE' || process.env.CI === 'true') throw e;
        log(`S3 section skipped: ${e.message}`);
      });
    }
  } finally {
    await cleanup();
  }
}

/** The S3 section (bench/s3.ts): runs it, prints its markdown and writes bench-results/latest-s3.{json,md}. */
async function s3Section(dir: string, tls: Tls, creds: Creds): Promise<void> {
  const res = await runS3Section({ dir, tls, creds, quick, repeats: R, log, only: only ? want : undefined });
  for (const r of res.rows) log(s3RowLine(r, res));
  const v = versions();
  const md = `${s3Markdown(res, v)}\nMachine: ${machine().cores} × ${machine().cpu}, Node ${process.version}; skopeo ${v.skopeo}.\n`;
  await mkdir(args.out!, { recursive: true });
  await writeFile(join(args.out!, 'latest-s3.json'), JSON.stringify({ date: new Date().toISOString(), machine: machine(), versions: v, ...res }, null, 2) + '\n');
  await writeFile(join(args.out!, 'latest-s3.md'), md);
  process.stdout.write(md);
  log(`S3 section done in ${res.durationS.toFixed(0)} s; wrote ${join(args.out!, 'latest-s3.json')} and latest-s3.md`);
}

function blank(): Side { return { values: [], cpuS: [], peakRssMiB: [] }; }

const fmt = (v: number, unit: string) => (Number.isNaN(v) ? '–' : unit === 'req/s' || unit === 'ms' || v >= 100 ? v.toFixed(0) : v.toFixed(1));
function fmtRow(r: Row): string {
  const b = median(r.berth.values), a = median(r.anchor.values);
  return `${r.title}: berth ${fmt(b, r.unit)} ${r.unit}, classic ${fmt(a, r.unit)} ${r.unit}, ratio ${(b / a).toFixed(2)}`;
}

function markdown(rows: Array<Row & { ratio: number }>, res: { date: string; mode: string; repeats: number; durationS: number; machine: ReturnType<typeof machine>; versions: Record<string, string> }, secure: boolean): string {
  const m = res.machine;
  const cell = (xs: number[], d = 1) => (xs.length ? median(xs).toFixed(d) : '–');
  const peak = (xs: number[]) => (xs.length ? Math.max(...xs).toFixed(0) : '–');
  const lines = [
    `Run ${res.date.slice(0, 16).replace('T', ' ')} UTC, ${res.mode} mode (${res.repeats === 1 ? '1 run' : `median of ${res.repeats} runs`}), ${res.durationS.toFixed(0)} s.`,
    `Machine: ${m.cores} × ${m.cpu}, ${m.ramGiB} GiB RAM, Linux ${m.kernel}, Node ${m.node}.`,
    `berth: the built CLI (node ${[...berthLaunchFlags(), 'dist/bundle/main.js'].join(' ')}), ${secure ? 'TLS + htpasswd (bcrypt cost 5)' : '**plain HTTP without auth** (TLS/htpasswd not wired yet when this ran)'}, filesystem storage, log level info.`,
    `classic: nginx ${res.versions.nginx} (Distribution's nginx recipe: TLS, auth_basic with the same htpasswd) → Distribution ${res.versions.registry} (filesystem, redis ${res.versions.redis} blob-descriptor cache).`,
    `Clients: skopeo ${res.versions.skopeo} (fresh cache per copy), undici in-process for uploads (keep-alive, TLS), curl for the blob GET (see RESULTS.md, "The GET client"), wrk (2 threads, 64 connections) for GET, an in-process raw keep-alive HTTP/1.1 loader for HEAD (wrk waits for a HEAD response's Content-Length body; undici reconnects after each HEAD); all on the same 2 cores as the servers.`,
    '',
    '| Workload | berth | classic | berth/classic | CPU s berth | CPU s classic | peak RSS MiB berth | peak RSS MiB classic |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.title}${r.note ? ` (${r.note})` : ''} | ${fmt(median(r.berth.values), r.unit)} ${r.unit} | ${fmt(median(r.anchor.values), r.unit)} ${r.unit} | ${Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '–'}${r.higherIsBetter ? '' : ' (lower is better)'} | ${cell(r.berth.cpuS)} | ${cell(r.anchor.cpuS)} | ${peak(r.berth.peakRssMiB)} | ${peak(r.anchor.peakRssMiB)} |`),
    '',
    'CPU s: server CPU time (user + system, /proc/PID/stat) during one run of the workload; classic = nginx master and workers + Distribution + redis. Peak RSS: sum of VmHWM (reset at the start of the workload) over those processes (an upper bound for several processes), max over runs.',
    '',
  ];
  return lines.join('\n');
}

function machine() {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = info.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  let kernel = ''; try { kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(); } catch { /* not linux */ }
  return { cores: cpus().length, cpu, ramGiB: Math.round(totalmem() / 2 ** 30), kernel, node: process.version };
}

function versions(): Record<string, string> {
  const v = (cmd: string, a: string[], re: RegExp) => { try { const o = execFileSync(cmd, a, { stdio: ['ignore', 'pipe', 'pipe'] }); return (o.toString() || '').match(re)?.[1] ?? '?'; } catch (e) { return String((e as { stderr?: Buffer }).stderr ?? '').match(re)?.[1] ?? '?'; } };
  return {
    nginx: spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr?.match(/nginx\/(\S+)/)?.[1] ?? '?',   // prints to stderr
    registry: v('docker-registry', ['--version'], /v?(\d+\.\d+\.\d+)/),
    redis: v('redis-server', ['--version'], /v=(\S+)/),
    skopeo: v('skopeo', ['--version'], /version (\S+)/),
  };
}

/** berth alone under --cpu-prof, manifest GET by tag with wrk; prints the top functions by self time. */
async function profile(opts: Parameters<typeof startBerth>[0], creds: Creds, dir: string, profDir: string): Promise<void> {
  const berth = await startBerth({ ...opts, root: join(dir, 'prof-data') });
  try {
    const small = await pushSmallImage(berth, creds, 'bench/small');
    const w = { connections: 64, threads: 2, seconds: quick ? 3 : 15, scratch: join(dir, 'wrk'), tls: opts.tls };
    const res = args['profile-head']
      ? await headLoad(berth, creds, `/v2/bench/small/blobs/${small.blobDigest}`, w)
      : await wrk(berth, creds, '/v2/bench/small/manifests/latest', 'GET', w);
    log(`${args['profile-head'] ? 'blob HEAD' : 'manifest GET'} under --cpu-prof: ${res.rps.toFixed(0)} req/s`);
  } finally {
    await berth.stop();
  }
  const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
  if (!files.length) throw new Error(`no .cpuprofile in ${profDir} (berth did not exit cleanly?)`);
  const text = summarizeProfile(readFileSync(join(profDir, files[0]!), 'utf8'), 25);
  await mkdir(args.out!, { recursive: true });
  await writeFile(join(args.out!, args['profile-head'] ? 'profile-blob-head.txt' : 'profile-manifest-get.txt'), text);
  process.stdout.write(text);
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
