// Starts the real CNCF Distribution binary (/usr/bin/docker-registry, Debian's 2.8.2) on
// 127.0.0.1:0 with filesystem storage in a temp dir. The port comes from its own "listening on"
// log line, so there is no listen/close/reuse race. Killed by PID and cleaned up in t.after.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const DISTRIBUTION_BIN = process.env.DISTRIBUTION_BIN ?? '/usr/bin/docker-registry';

export function distributionAvailable(): boolean { return existsSync(DISTRIBUTION_BIN); }

export interface Distribution { url: string; host: string; port: number; root: string; output: string[] }

export async function startDistribution(t: { after(fn: () => unknown): void }): Promise<Distribution> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-distribution-'));
  const root = join(dir, 'data');
  const config = join(dir, 'config.yml');
  await writeFile(config, [
    'version: 0.1',
    'log: { level: info, formatter: text }',
    `storage: { filesystem: { rootdirectory: ${JSON.stringify(root)} }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } }`,
    'http: { addr: "127.0.0.1:0", secret: berth-test-secret }',
    '',
  ].join('\n'));
  const child = spawn(DISTRIBUTION_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  });
  const output: string[] = [];
  const addr = await new Promise<string>((resolve, reject) => {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        const m = /listening on (127\.0\.0\.1:\d+)/.exec(line);
        if (m) resolve(m[1]!);
      });
    }
    child.once('error', reject);
    child.once('exit', (code, sig) => reject(new Error(`docker-registry exited (${code ?? sig}) before listening:\n${output.join('\n')}`)));
  });
  const port = Number(addr.split(':')[1]);
  return { url: `http://${addr}`, host: addr, port, root, output };
}
