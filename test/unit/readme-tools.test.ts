// The README's one install command for the test tools is the package list .ci/run installs (APT_PACKAGES, plus
// docker.io, which .ci/run adds when no docker CLI is on PATH), and the README names every binary .ci/run checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
const ciRun = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

function bashArray(name: string): string[] {
  const m = new RegExp(`^${name}=\\(([^)]*)\\)`, 'm').exec(ciRun);
  assert.ok(m, `.ci/run defines ${name}=( … )`);
  return m[1]!.split(/\s+/).filter(Boolean);
}

test('README: the apt-get install line lists exactly the packages .ci/run installs', () => {
  const line = readme.split('\n').find((l) => l.startsWith('apt-get install -y --no-install-recommends '));
  assert.ok(line, 'README has the apt-get install line');
  const readmePackages = line.split(/\s+/).slice(4).sort();
  assert.deepEqual(readmePackages, [...bashArray('APT_PACKAGES'), 'docker.io'].sort());
});

test('README: the Development section names every tool .ci/run checks for', () => {
  const dev = readme.slice(readme.indexOf('\n## Development\n'), readme.indexOf('\n## ', readme.indexOf('\n## Development\n') + 5));
  const plumbing = new Set(['newuidmap', 'fuse-overlayfs', 'conmon']);   // named by their packages in the line
  for (const b of bashArray('NEEDED_BINARIES')) {
    if (!plumbing.has(b)) assert.ok(dev.includes(b), `Development names ${b}`);
  }
  assert.match(dev, /skipped: none/, 'and says how a run reports skips');
});
