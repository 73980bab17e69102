// Reads a V8 .cpuprofile (node --cpu-prof) and lists the functions with the most self time, plus the same
// grouped by source file/package, as plain text. Pure: it only parses the JSON it is given.
interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface Profile { nodes: Node[]; startTime: number; endTime: number; samples?: number[]; timeDeltas?: number[] }

const short = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/dist\//, 'dist/');

/** `window`: only the samples taken in [from, to], µs of the monotonic clock (V8's timestamps: on Linux the
 *  clock of process.hrtime, so another process's `process.hrtime.bigint() / 1000n` marks a phase). */
export function summarizeProfile(json: string, top = 25, window?: { from: number; to: number }): string {
  const p = JSON.parse(json) as Profile;
  const self = new Map<number, number>();                 // node id → µs
  if (p.samples && p.timeDeltas) {
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i] ?? 0;
      if (window && (t < window.from || t > window.to)) continue;
      self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0));
    }
  } else {
    const per = (p.endTime - p.startTime) / Math.max(1, p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0));
    for (const n of p.nodes) self.set(n.id, (n.hitCount ?? 0) * per);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0) || 1;
  const byFn = new Map<string, number>(); const byFile = new Map<string, number>();
  for (const n of p.nodes) {
    const t = self.get(n.id) ?? 0;
    if (!t) continue;
    const f = n.callFrame;
    const where = f.url ? `${short(f.url)}:${f.lineNumber + 1}` : '(native/V8)';
    const key = `${f.functionName || '(anonymous)'}  ${where}`;
    byFn.set(key, (byFn.get(key) ?? 0) + t);
    const file = f.url ? short(f.url).replace(/^(node_modules\/(@[^/]+\/)?[^/]+)\/.*$/, '$1') : `(${f.functionName || 'native'})`;
    byFile.set(file, (byFile.get(file) ?? 0) + t);
  }
  const list = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, v]) => `${(100 * v / total).toFixed(1).padStart(5)}%  ${(v / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  return [
    `CPU profile: ${(total / 1e6).toFixed(1)} s sampled`,
    '', `Top ${top} functions by self time:`, ...list(byFn, top),
    '', 'By file / package:', ...list(byFile, 15), '',
  ].join('\n');
}
