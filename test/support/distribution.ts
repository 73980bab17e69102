// Test-scoped access to the real CNCF Distribution (Debian's docker-registry 2.8.2): a thin
// t.after-managed wrapper over processes.ts's startDistribution, which owns spawning and port discovery.
import { existsSync } from 'node:fs';
import { startDistribution as spawnDistribution } from './processes.js';

export const DISTRIBUTION_BIN = process.env.DISTRIBUTION_BIN ?? '/usr/bin/docker-registry';

export function distributionAvailable(): boolean { return existsSync(DISTRIBUTION_BIN); }

export interface Distribution { url: string; host: string; port: number; root: string }

export async function startDistribution(t: { after(fn: () => unknown): void }): Promise<Distribution> {
  const d = await spawnDistribution();
  t.after(() => d.close());
  return { url: d.url, host: d.host, port: Number(new URL(d.url).port), root: d.root };
}
