// Config discovery (cli/config-path.ts) as registry:2 finds its file: the argument, REGISTRY_CONFIGURATION_PATH,
// /etc/docker/registry/config.yml when it exists, ./gateway.yml. The exists() probe is a table: /etc is never read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findConfig } from '../../src/cli/config-path.js';
import { probeHosts } from '../../src/cli/healthcheck-command.js';

const ETC = '/etc/docker/registry/config.yml';

test('findConfig: the order and the reason given for each choice', () => {
  const rows: Array<{ argument?: string; env?: Record<string, string>; present?: string[]; file: string; source: string; reason: RegExp }> = [
    { argument: 'my.yml', env: { REGISTRY_CONFIGURATION_PATH: '/x/config.yml' }, present: [ETC], file: 'my.yml', source: 'argument', reason: /command line/ },
    { env: { REGISTRY_CONFIGURATION_PATH: '/x/config.yml' }, present: [ETC], file: '/x/config.yml', source: 'env', reason: /^from REGISTRY_CONFIGURATION_PATH$/ },
    // Named but missing: still that file (loadConfig says "file not found"), no falling through to /etc.
    { env: { REGISTRY_CONFIGURATION_PATH: 'rel/config.yml' }, present: [], file: 'rel/config.yml', source: 'env', reason: /REGISTRY_CONFIGURATION_PATH/ },
    // Empty counts as unset (docker run -e REGISTRY_CONFIGURATION_PATH= …).
    { env: { REGISTRY_CONFIGURATION_PATH: '' }, present: [ETC], file: ETC, source: 'distribution-default', reason: /\/etc\/docker\/registry\/config\.yml exists/ },
    { present: [ETC], file: ETC, source: 'distribution-default', reason: /registry:2/ },
    { present: [], file: 'gateway.yml', source: 'default', reason: /no --config, no REGISTRY_CONFIGURATION_PATH, no \/etc\/docker\/registry\/config\.yml/ },
    { present: ['gateway.yml'], file: 'gateway.yml', source: 'default', reason: /default/ },
  ];
  for (const r of rows) {
    const probed: string[] = [];
    const got = findConfig({ argument: r.argument, env: r.env ?? {}, exists: (p) => { probed.push(p); return (r.present ?? []).includes(p); } });
    const label = JSON.stringify(r);
    assert.equal(got.file, r.file, label);
    assert.equal(got.source, r.source, label);
    assert.match(got.reason, r.reason, label);
    // Only /etc is probed, and only when nothing was named.
    assert.deepEqual(probed, r.argument !== undefined || r.env?.REGISTRY_CONFIGURATION_PATH ? [] : [ETC], label);
  }
});

test('healthcheck probeHosts: wildcards become loopback (IPv4 first for dual-stack), others stay', () => {
  assert.deepEqual(probeHosts('0.0.0.0'), ['127.0.0.1']);
  assert.deepEqual(probeHosts('::'), ['127.0.0.1', '::1']);
  assert.deepEqual(probeHosts('::1'), ['::1']);
  assert.deepEqual(probeHosts('127.0.0.1'), ['127.0.0.1']);
  assert.deepEqual(probeHosts('registry.internal'), ['registry.internal']);
});
