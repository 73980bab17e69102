// `node --import tsx bench/s3-stream.ts [--mib 1024] [--runs 3] [--uploads 1] [--no-length] [--cpu-prof DIR] [--node-arg ARG]… [--log FILE]` (after `npm run build`): how close one upload
// stream through berth comes to the store's own rate, and where the machine's CPU goes meanwhile (bench/RESULTS.md,
// "Where berth's time goes on S3"). Per run: a raw PUT of a file by curl (--aws-sigv4, one request), then the same
// bytes through berth (the built CLI, plain HTTP, multipartcopythresholdsize 5 GiB): POST, one PATCH of the whole file
// with its Content-Length (curl -T, as skopeo and podman send a layer), PUT ?digest=. For each: MiB/s and the CPU
// seconds of berth, radosgw and ceph-osd (/proc/PID/stat) and of the whole machine (/proc/stat: busy and idle).
// Uses the tests' store (test/support/s3.ts's s3Store(): the S3_* environment, else scripts/s3-ceph.sh); writes
// under fresh key prefixes and deletes them. --cpu-prof DIR runs berth under Node's --cpu-prof (the profile is written
// to DIR when berth stops), to see where berth's CPU per GiB goes; --node-arg passes flags to berth's node (e.g.
// --trace-gc), --log FILE keeps what berth prints. --uploads N runs N such uploads at once (each its own bytes; the rate
// is their bytes together over the time until the last ends); --no-length sends each PATCH as a chunked body without
// a length, as docker sends a layer.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { run } from '../test/support/clients.js';
import { benchStore, deletePrefix, newPrefix, rawObjectFile, rawPut, startBerthS3 } from './s3-stacks.js';
import { CLK_TCK, cpuSeconds, tempDir, type Creds, type Tls } from './stacks.js';

const { values: a } = parseArgs({ options: { mib: { type: 'string', default: '1024' }, runs: { type: 'string', default: '3' }, 'cpu-prof': { type: 'string' },
  'node-arg': { type: 'string', multiple: true, default: [] }, log: { type: 'string' }, uploads: { type: 'string', default: '1' },
  'no-length': { type: 'boolean', default: false } } });
const uploads = Math.max(1, Math.min(16, Number(a.uploads) || 1));
const mib = Math.max(1, Math.min(8192, Number(a.mib) || 1024));
const runs = Math.max(1, Math.min(20, Number(a.runs) || 3));
const size = mib * 1024 * 1024;

/** Pids of the processes named `name` (comm), from /proc. */
async function pidsOf(name: string): Promise<number[]> {
  const { stdout } = await run('pgrep', ['-x', name]);
  return stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** Busy and idle seconds of the whole machine so far (/proc/stat's cpu line). */
function machine(): { busy: number; idle: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
  return { busy: (user + nice + system + irq + softirq + steal) / CLK_TCK, idle: (idle + iowait) / CLK_TCK };
}

async function measured(label: string, pids: Record<string, number[]>, fn: () => Promise<void>, n = 1): Promise<void> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]));
  const m0 = machine();
  const t0 = performance.now();
  await fn();
  const secs = (performance.now() - t0) / 1000;
  const m1 = machine();
  const cpu = Object.entries(pids).map(([k, p]) => `${k} ${(cpuSeconds(p) - before[k]!).toFixed(1)}`).join(', ');
  console.log(`${label.padEnd(28)} ${(mib * n / secs).toFixed(0).padStart(4)} MiB/s  ${secs.toFixed(2)} s   CPU s: ${cpu}; machine busy ${(m1.busy - m0.busy).toFixed(1)}, idle ${(m1.idle - m0.idle).toFixed(1)}`);
}

const s3 = await benchStore();
const dir = await tempDir('berth-s3-stream-');
const roots: string[] = [];
try {
  const files: { file: string; digest: string }[] = [];
  for (let u = 0; u < uploads; u++) {
    const file = await rawObjectFile(dir, size, 900 + u);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    files.push({ file, digest: `sha256:${hash.digest('hex')}` });
  }
  const file = files[0]!.file;
  const root = newPrefix('stream');
  roots.push(root);
  // Plain HTTP without auth: tls and creds are not used.
  const berth = await startBerthS3({ dir, s3, root, config: { id: 'copy5g', label: '', copyThreshold: 5 * 1024 ** 3, redirect: false },
    tls: {} as Tls, creds: {} as Creds, logLevel: 'warn',
    nodeArgs: [...(a['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${a['cpu-prof']}`] : []), ...a['node-arg']], logFile: a.log });
  try {
    const pids = { berth: berth.pids(), radosgw: await pidsOf('radosgw'), 'ceph-osd': await pidsOf('ceph-osd') };
    console.log(`store ${s3.endpoint}; ${mib} MiB per upload; ${runs} runs; berth ${berth.url}`);
    for (let i = 1; i <= runs; i++) {
      const key = `${newPrefix('stream-raw').replace(/^\//, '')}/obj`;
      roots.push('/' + key.split('/')[0]);
      await measured(`run ${i}: raw PUT (curl)`, pids, async () => { await rawPut(s3, key, file, size); });
      await measured(`run ${i}: berth POST+PATCH+PUT${uploads > 1 ? ` ×${uploads}` : ''}${a['no-length'] ? ' (no length)' : ''}`, pids, async () => {
        await Promise.all(files.map(async ({ file, digest }, u) => {
          const post = await run('curl', ['-sS', '-o', '/dev/null', '-D', '-', '-X', 'POST', `${berth.url}/v2/stream/r${i}u${u}/blobs/uploads/`]);
          const loc = /^location:\s*(\S+)/im.exec(post.stdout)?.[1];
          if (!loc) throw new Error(`POST: no Location: ${post.stdout}`);
          const url = new URL(loc, berth.url);
          const te = a['no-length'] ? ['-H', 'transfer-encoding: chunked'] : [];
          const patch = await run('curl', ['-sS', '-o', '/dev/null', '-D', '-', '-X', 'PATCH', '-H', 'content-type: application/octet-stream', '-H', 'expect:', ...te, '-T', file, url.href], { timeoutMs: 600_000 });
          const next = /^location:\s*(\S+)/im.exec(patch.stdout)?.[1];
          if (!/^HTTP\/1\.1 202/m.test(patch.stdout) || !next) throw new Error(`PATCH: ${patch.stdout}`);
          const done = new URL(next, berth.url);
          done.searchParams.set('digest', digest);
          const put = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', done.href]);
          if (put.stdout.trim() !== '201') throw new Error(`PUT: HTTP ${put.stdout}`);
        }));
      }, uploads);
    }
  } finally {
    await berth.stop();
  }
} finally {
  for (const r of roots) await deletePrefix(s3, r).catch(() => 0);
  await rm(dir, { recursive: true, force: true });
}
