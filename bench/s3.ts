// The S3 section of `npm run bench` (issue #17, "Performance"): berth and Distribution 2.8.2 side by side on the
// tests' Ceph RGW bucket, each workload on fresh key prefixes deleted afterwards, against the store's raw PUT/GET
// rate measured in the same run (curl --aws-sigv4). Both servers get the same storage settings: Distribution's
// defaults, and again with multipartcopythresholdsize 5 GiB (the commit's move is one CopyObject, which Ceph RGW
// does by reference). Plain HTTP without auth on both sides: the storage path is what is compared. Measures only.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import type { S3Settings } from '../test/support/s3.js';
import { blobDigest, MiB, writeBenchImage, type LayerSize } from './data.js';
import {
  benchStore, deletePrefix, newPrefix, rawGet, rawObjectFile, rawPut, startBerthS3, startDistributionS3, storeCapacity, type S3Config,
} from './s3-stacks.js';
import { meter, type Creds, type Stack, type Tls } from './stacks.js';
import { blobGet, chunkedUpload, dockerStylePush, mbPerS, monolithicUpload, skopeoPull, skopeoPush } from './workloads.js';

const GiB = 1024 * MiB;
export const DEFAULTS: S3Config = { id: 'defaults', label: 'Distribution\'s defaults (multipartcopythresholdsize 32 MiB)', redirect: false };
export const COPY5G: S3Config = { id: 'copy5g', label: 'multipartcopythresholdsize 5 GiB (CopyObject always)', copyThreshold: 5 * GiB, redirect: false };

export interface Side { values: number[]; cpuS: number[]; peakRssMiB: number[]; extra?: unknown[] }
export interface S3Row {
  id: string; title: string; unit: string; higherIsBetter: boolean; berth: Side; anchor: Side; note?: string;
  ref?: 'put' | 'get';   // the raw rate this row is compared with
  bytes?: number;        // bytes moved per run (for CPU-s per GiB)
}
export interface S3Result {
  mode: 'quick' | 'full'; repeats: number; durationS: number; endpoint: string; capacityGiB: number;
  raw: { objectMiB: number; putMBps: number[]; getMBps: number[] };
  rows: S3Row[];
}

const blank = (): Side => ({ values: [], cpuS: [], peakRssMiB: [] });
export const median = (xs: number[]) => { if (!xs.length) return NaN; const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
const layersOf = (n: number, randomMiB: number, textMiB: number): LayerSize[] => Array.from({ length: n }, () => ({ randomMiB, textMiB }));
const sizeLabel = (b: number) => (b >= GiB ? `${+(b / GiB).toFixed(2)} GiB` : `${Math.round(b / MiB)} MiB`);

/** Workload sizes; `osdMiB`: the OSD size asked for if this process starts the store (full mode only: the quick
 *  mode runs in CI right before the tests, which get the script's default store). */
export function s3Sizes(quick: boolean) {
  return quick
    ? { image: { label: '~25 MB image, 3 layers', layers: layersOf(3, 8, 2) }, raw: 32 * MiB, chunked: 48 * MiB, conc: 32 * MiB, osdMiB: undefined,
        dockerMiB: [7, 1, 12, 3] }
    : { image: { label: '~1 GB image, 10 layers', layers: layersOf(10, 95, 12) }, raw: 200 * MiB, chunked: GiB, conc: GiB, osdMiB: 12_288,
        dockerMiB: [60, 2, 250, 7, 1, 30, 9, 120, 4, 15] };
}

export async function runS3Section(o: {
  dir: string; tls: Tls; creds: Creds; quick: boolean; repeats: number; log: (s: string) => void; only?: (id: string) => boolean;
}): Promise<S3Result> {
  const t0 = Date.now();
  const P = s3Sizes(o.quick);
  const want = o.only ?? (() => true);
  const log = o.log;
  const s3 = await benchStore(P.osdMiB);
  const capacity = storeCapacity();
  log(`S3: ${s3.endpoint} bucket ${s3.bucket}, OSD ${sizeLabel(capacity)}`);
  if (!o.quick && capacity < 8 * GiB) log(`S3: the OSD has ${sizeLabel(capacity)}; 1 GiB workloads leave deleted data to RGW's gc (30 s) and may fill it (S3_CEPH_SIZE_MB, read only at start)`);

  const rows: S3Row[] = [];
  const R = o.repeats;
  const sides = (r: number): Array<'berth' | 'anchor'> => (r % 2 === 0 ? ['berth', 'anchor'] : ['anchor', 'berth']);
  const start = (side: 'berth' | 'anchor', root: string, config: S3Config): Promise<Stack> => side === 'berth'
    ? startBerthS3({ dir: o.dir, s3, root, config, tls: o.tls, creds: o.creds })
    : startDistributionS3({ dir: o.dir, s3, root, config });
  /** A stack on a fresh prefix for `fn`; stopped and its prefix deleted afterwards, whatever happens. */
  const onFresh = async <T>(side: 'berth' | 'anchor', config: S3Config, tag: string, fn: (s: Stack, root: string) => Promise<T>): Promise<T> => {
    const root = newPrefix(`${tag}-${side === 'berth' ? 'b' : 'd'}`);
    const s = await start(side, root, config);
    try { return await fn(s, root); } finally { await s.stop(); await deletePrefix(s3, root); }
  };
  const measure = async (row: S3Row, s: Stack, fn: () => Promise<number>) => {
    const m = meter(s);
    let v: number;
    try { v = await fn(); } finally { m.stop(); }
    const { cpuS, peakRssMiB } = m.result();
    const side = row[s.side];
    side.values.push(v); side.cpuS.push(cpuS); side.peakRssMiB.push(peakRssMiB);
  };

  // ---- the store's raw rate, once per repeat (one object, PUT then GET, deleted)
  const raw = { objectMiB: P.raw / MiB, putMBps: [] as number[], getMBps: [] as number[] };
  const rawFile = await rawObjectFile(join(o.dir, 'raw'), P.raw);
  const rawRate = async (r: number) => {
    const root = newPrefix('raw');
    try {
      raw.putMBps.push(mbPerS(P.raw, await rawPut(s3, `${root}/obj`, rawFile, P.raw)));
      raw.getMBps.push(mbPerS(P.raw, await rawGet(s3, `${root}/obj`, P.raw)));
      log(`S3 raw ${sizeLabel(P.raw)} object, run ${r + 1}: PUT ${raw.putMBps.at(-1)!.toFixed(0)} MB/s, GET ${raw.getMBps.at(-1)!.toFixed(0)} MB/s`);
    } finally { await deletePrefix(s3, root); }
  };

  log(`S3: generating ${P.image.label}`);
  const img = await writeBenchImage(join(o.dir, 's3-image'), 41, P.image.layers);
  const mb = (img.wireBytes / 1e6).toFixed(0);
  const chunkedDigest = await blobDigest(500, P.chunked);

  // Layers as docker pushes them: a PATCH without a length each, 5 at a time (bench/workloads.ts dockerStylePush).
  const dockerBlobs = await Promise.all(P.dockerMiB.map(async (m, i) => ({ seed: 700 + i, size: m * MiB, digest: await blobDigest(700 + i, m * MiB) })));
  const dockerBytes = dockerBlobs.reduce((n, b) => n + b.size, 0);
  const pushRows = new Map<string, S3Row>();
  const dockerRows = new Map<string, S3Row>();
  const chunkRows = new Map<string, S3Row>();
  for (const c of [DEFAULTS, COPY5G]) {
    pushRows.set(c.id, { id: `s3-push-${c.id}`, title: `skopeo push, ${P.image.label} (${mb} MB), ${c.label}`, unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank(), ref: 'put', bytes: img.wireBytes });
    dockerRows.set(c.id, {
      id: `s3-docker-${c.id}`, title: `${dockerBlobs.length} layers of ${Math.min(...P.dockerMiB)}–${Math.max(...P.dockerMiB)} MiB (${sizeLabel(dockerBytes)}) pushed as docker does (POST, one PATCH without a length, PUT; 5 at a time), ${c.label}`,
      unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank(), ref: 'put', bytes: dockerBytes,
    });
    chunkRows.set(c.id, { id: `s3-chunked-${c.id}`, title: `${sizeLabel(P.chunked)} blob, chunked upload (16 MiB PATCHes), ${c.label}`, unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank(), ref: 'put', bytes: P.chunked });
  }
  const pull: S3Row = { id: 's3-pull', title: `skopeo pull, ${P.image.label} (${mb} MB), redirect off (served through the registry)`, unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank(), ref: 'get', bytes: img.wireBytes };
  const blobGetRow: S3Row = { id: 's3-blob-get', title: `blob GET by curl, the image's largest layer (${sizeLabel(img.biggest.size)}), redirect off (the raw GET's client, through the registry)`, unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank(), ref: 'get', bytes: img.biggest.size };
  const pullRedirect: S3Row = { id: 's3-pull-redirect', title: `skopeo pull, ${P.image.label} (${mb} MB), redirect on (blob GETs answered 307 to the store)`, unit: 'MB/s', higherIsBetter: true, berth: blank(), anchor: blank(), ref: 'get', bytes: img.wireBytes };
  const redirects: Record<string, string> = {};

  for (let r = 0; r < R; r++) {
    if (want('s3-raw')) await rawRate(r);
    for (const c of [DEFAULTS, COPY5G]) {
      for (const side of sides(r)) {
        if (want('s3-image')) {
          await onFresh(side, c, `img-${c.id}`, async (s, root) => {
            const push = pushRows.get(c.id)!;
            await measure(push, s, async () => mbPerS(img.wireBytes, await skopeoPush(s, o.tls, o.creds, img.ref, 'bench/s3img')));
            log(`S3 ${side} push (${c.id}) run ${r + 1}: ${push[side].values.at(-1)!.toFixed(1)} MB/s`);
            if (c !== DEFAULTS) return;
            await measure(pull, s, async () => mbPerS(img.wireBytes, await skopeoPull(s, o.tls, o.creds, 'bench/s3img', o.dir)));
            log(`S3 ${side} pull run ${r + 1}: ${pull[side].values.at(-1)!.toFixed(1)} MB/s`);
            await measure(blobGetRow, s, async () => mbPerS(img.biggest.size, await blobGet(s, o.tls, o.creds, 'bench/s3img', img.biggest.digest, img.biggest.size)));
            log(`S3 ${side} blob GET (curl) run ${r + 1}: ${blobGetRow[side].values.at(-1)!.toFixed(1)} MB/s`);
            // A second server with redirect on, on the same prefix: a blob GET answers 307 to the store.
            const rs = await start(side, root, { ...c, redirect: true });
            try {
              redirects[side] = await redirectTarget(rs, s3);
              await measure(pullRedirect, rs, async () => mbPerS(img.wireBytes, await skopeoPull(rs, o.tls, o.creds, 'bench/s3img', o.dir)));
              log(`S3 ${side} pull, redirect on, run ${r + 1}: ${pullRedirect[side].values.at(-1)!.toFixed(1)} MB/s (${redirects[side]})`);
            } finally { await rs.stop(); }
          });
        }
        if (want('s3-docker')) {
          await onFresh(side, c, `docker-${c.id}`, async (s) => {
            const row = dockerRows.get(c.id)!;
            await measure(row, s, async () => mbPerS(dockerBytes, await dockerStylePush(s, o.creds, 'bench/s3docker', dockerBlobs)));
            log(`S3 ${side} docker-style push (${c.id}) run ${r + 1}: ${row[side].values.at(-1)!.toFixed(1)} MB/s`);
          });
        }
        if (want('s3-chunked')) {
          await onFresh(side, c, `chunk-${c.id}`, async (s) => {
            const row = chunkRows.get(c.id)!;
            await measure(row, s, async () => mbPerS(P.chunked, await chunkedUpload(s, o.creds, 'bench/s3blob', 500, P.chunked, chunkedDigest)));
            log(`S3 ${side} chunked (${c.id}) run ${r + 1}: ${row[side].values.at(-1)!.toFixed(1)} MB/s`);
          });
        }
      }
    }
  }
  if (want('s3-image')) {
    pullRedirect.note = `GET of a layer: ${Object.entries(redirects).map(([k, v]) => `${k === 'berth' ? 'berth' : 'Distribution'} ${v}`).join('; ')}`;
    rows.push(pushRows.get('defaults')!, pushRows.get('copy5g')!, pull, blobGetRow, pullRedirect);
  }
  if (want('s3-docker')) rows.push(dockerRows.get('defaults')!, dockerRows.get('copy5g')!);
  if (want('s3-chunked')) rows.push(chunkRows.get('defaults')!, chunkRows.get('copy5g')!);
  await rm(img.dir, { recursive: true, force: true });

  // ---- peak RSS of berth, 4 concurrent big monolithic uploads (once; berth only: the target is berth's)
  if (want('s3-conc')) {
    // Live data: 4 uploads, then 4 blobs (CopyObject by reference with COPY5G); keep 2 GiB for others and gc lag.
    const fit = Math.floor((capacity - 2 * GiB) / 4 / (64 * MiB)) * 64 * MiB;
    const size = Math.max(32 * MiB, Math.min(P.conc, fit));
    if (size < P.conc) log(`S3: OSD of ${sizeLabel(capacity)}: concurrent uploads of ${sizeLabel(size)} instead of ${sizeLabel(P.conc)}`);
    const digests: string[] = []; for (let i = 0; i < 4; i++) digests.push(await blobDigest(600 + i, size));
    const row: S3Row = { id: 's3-conc-rss', title: `peak RSS of berth, 4 concurrent ${sizeLabel(size)} monolithic uploads, ${COPY5G.label} (1 run)`, unit: 'MiB', higherIsBetter: false, berth: blank(), anchor: blank(), bytes: 4 * size };
    await onFresh('berth', COPY5G, 'conc', async (s) => {
      const m = meter(s);
      const t = performance.now();
      try { await Promise.all(digests.map((d, i) => monolithicUpload(s, o.creds, `bench/conc${i}`, 600 + i, size, d))); } finally { m.stop(); }
      const secs = (performance.now() - t) / 1000;
      const { cpuS, peakRssMiB } = m.result();
      row.berth.values.push(peakRssMiB); row.berth.cpuS.push(cpuS); row.berth.peakRssMiB.push(peakRssMiB);
      row.note = `aggregate ${mbPerS(4 * size, secs).toFixed(0)} MB/s`;
    });
    log(`S3 berth, 4 concurrent uploads: peak RSS ${row.berth.values[0]!.toFixed(0)} MiB, ${row.note}`);
    rows.push(row);
  }
  await rm(rawFile, { force: true });
  return { mode: o.quick ? 'quick' : 'full', repeats: R, durationS: (Date.now() - t0) / 1000, endpoint: s3.endpoint, capacityGiB: capacity / GiB, raw, rows };
}

/** GET of the image's first layer without following redirects: "307 → <origin of Location>", checked to be the store. */
async function redirectTarget(s: Stack, s3: S3Settings): Promise<string> {
  const accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
  const m = await request(`${s.url}/v2/bench/s3img/manifests/latest`, { dispatcher: s.dispatcher, headers: { accept } });
  if (m.statusCode !== 200) throw new Error(`${s.side} manifest: HTTP ${m.statusCode}`);
  const digest = ((await m.body.json()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
  const r = await request(`${s.url}/v2/bench/s3img/blobs/${digest}`, { dispatcher: s.dispatcher });
  await r.body.dump();
  const loc = String(r.headers.location ?? '');
  const origin = loc ? new URL(loc).origin : '(no Location)';
  if (r.statusCode !== 307 || origin !== new URL(s3.endpoint).origin) throw new Error(`${s.side} with redirect on: blob GET answered ${r.statusCode} → ${origin}, wanted 307 → ${s3.endpoint}`);
  return `${r.statusCode} → ${origin} (the store)`;
}

// ---------- report ----------

const fmt = (v: number, unit: string) => (Number.isNaN(v) ? '–' : unit === 'MiB' || v >= 100 ? v.toFixed(0) : v.toFixed(1));
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)} %` : '–');

export function s3RowLine(r: S3Row, res: S3Result): string {
  const b = median(r.berth.values), a = median(r.anchor.values);
  const ref = r.ref === 'put' ? median(res.raw.putMBps) : r.ref === 'get' ? median(res.raw.getMBps) : NaN;
  return `${r.title}: berth ${fmt(b, r.unit)} ${r.unit}, Distribution ${fmt(a, r.unit)}${r.ref ? `, berth/raw ${pct(b / ref)}` : ''}`;
}

/** The section's markdown: the table, then issue #17's targets marked met or missed. */
export function s3Markdown(res: S3Result, versions: Record<string, string>): string {
  const putRef = median(res.raw.putMBps), getRef = median(res.raw.getMBps);
  const cell = (xs: number[]) => (xs.length ? median(xs).toFixed(1) : '–');
  const perGiB = (r: S3Row) => (r.bytes && r.berth.cpuS.length ? ` (${(median(r.berth.cpuS) / (r.bytes / GiB)).toFixed(2)}/GiB)` : '');
  const peak = (xs: number[]) => (xs.length ? Math.max(...xs).toFixed(0) : '–');
  const row = (id: string) => res.rows.find((r) => r.id === id);
  const lines = [
    `S3 section, ${res.mode} mode (${res.repeats === 1 ? '1 run' : `median of ${res.repeats} runs`}), ${res.durationS.toFixed(0)} s. Store: Ceph RGW (scripts/s3-ceph.sh, bluestore OSD of ${res.capacityGiB.toFixed(0)} GiB) at ${res.endpoint}, one bucket, a fresh key prefix per workload and server, deleted after it.`,
    `berth (the built CLI) and Distribution ${versions.registry ?? '2.8.2'} (docker-registry alone, in-memory blob-descriptor cache) both on **plain HTTP without auth** (the storage path is compared, not TLS), the same s3 settings (chunksize 10 MiB default on both), redirect off unless said.`,
    `Raw rate of the store, curl --aws-sigv4, one ${res.raw.objectMiB} MiB object: PUT ${putRef.toFixed(0)} MB/s, GET ${getRef.toFixed(0)} MB/s (runs: PUT ${res.raw.putMBps.map((v) => v.toFixed(0)).join(', ')}; GET ${res.raw.getMBps.map((v) => v.toFixed(0)).join(', ')}).`,
    '',
    '| Workload | berth | Distribution | berth/Distribution | berth/raw | CPU s berth (per GiB) | CPU s Distribution | peak RSS MiB berth | peak RSS MiB Distribution |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...res.rows.map((r) => {
      const b = median(r.berth.values), a = median(r.anchor.values);
      const ref = r.ref === 'put' ? putRef : r.ref === 'get' ? getRef : NaN;
      return `| ${r.title}${r.note ? ` (${r.note})` : ''} | ${fmt(b, r.unit)} ${r.unit} | ${fmt(a, r.unit)}${Number.isNaN(a) ? '' : ` ${r.unit}`} | ${Number.isFinite(b / a) ? (b / a).toFixed(2) : '–'} | ${r.ref ? pct(b / ref) : '–'} | ${cell(r.berth.cpuS)}${perGiB(r)} | ${cell(r.anchor.cpuS)} | ${peak(r.berth.peakRssMiB)} | ${peak(r.anchor.peakRssMiB)} |`;
    }),
    '',
    'CPU s: server CPU time (user + system, /proc/PID/stat) during one run of the workload (median); for the redirect-on pull, the CPU of the server that answered the 307s. Peak RSS: VmHWM (reset at the start), max over runs.',
    '',
    `| target (issue #17; workloads of this ${res.mode} run) | this run | |`,
    '|---|---:|---|',
  ];
  const mark = (ok: boolean) => (ok ? 'met' : 'missed');
  for (const c of ['defaults', 'copy5g']) {
    const p = row(`s3-push-${c}`);
    const label = c === 'defaults' ? 'defaults' : 'threshold 5 GiB';
    if (p) {
      const b = median(p.berth.values), a = median(p.anchor.values);
      lines.push(`| push ≥ 5× Distribution (${label}) | ${(b / a).toFixed(2)}× (${fmt(b, 'MB/s')} vs ${fmt(a, 'MB/s')} MB/s) | ${mark(b / a >= 5)} |`);
      lines.push(`| push ≥ 70 % of raw PUT (${label}) | ${pct(b / putRef)} (${fmt(b, 'MB/s')} vs ${fmt(putRef, 'MB/s')} MB/s) | ${mark(b / putRef >= 0.7)} |`);
    }
  }
  const pl = row('s3-pull');
  if (pl) { const b = median(pl.berth.values); lines.push(`| pull ≥ 80 % of raw GET, redirect off | ${pct(b / getRef)} (${fmt(b, 'MB/s')} vs ${fmt(getRef, 'MB/s')} MB/s) | ${mark(b / getRef >= 0.8)} |`); }
  const bg = row('s3-blob-get');
  if (bg) { const b = median(bg.berth.values); lines.push(`| (the same client as the raw GET) blob GET by curl ≥ 80 % of raw GET, redirect off | ${pct(b / getRef)} (${fmt(b, 'MB/s')} vs ${fmt(getRef, 'MB/s')} MB/s) | ${mark(b / getRef >= 0.8)} |`); }
  const pr = row('s3-pull-redirect');
  if (pr) lines.push(`| redirect on sends clients to the store | ${pr.note ?? ''}; pull ${fmt(median(pr.berth.values), 'MB/s')} MB/s | ${pr.berth.values.length ? 'met' : 'missed'} |`);
  for (const c of ['defaults', 'copy5g']) {
    const ch = row(`s3-chunked-${c}`);
    if (ch) { const b = median(ch.berth.values); lines.push(`| chunked upload ≥ 70 % of raw PUT (${c === 'defaults' ? 'defaults' : 'threshold 5 GiB'}) | ${pct(b / putRef)} (${fmt(b, 'MB/s')} vs ${fmt(putRef, 'MB/s')} MB/s) | ${mark(b / putRef >= 0.7)} |`); }
  }
  const cr = row('s3-conc-rss');
  if (cr) { const v = Math.max(...cr.berth.values); lines.push(`| peak RSS, 4 concurrent uploads ≤ 200 MiB | ${v.toFixed(0)} MiB | ${mark(v <= 200)} |`); }
  lines.push('');
  return lines.join('\n');
}
