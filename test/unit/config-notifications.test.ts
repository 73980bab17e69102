// registry.notifications: Distribution's endpoint keys with defaults, berth's signingkey and
// journaldirectory, and every message (missing name/url, bad URL, bad action, duplicate names).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigFromString } from '../../src/config/load.js';

const load = (yaml: string) => loadConfigFromString(yaml, '/etc/berth/gateway.yml', {});
const problems = (yaml: string) => {
  try { load(yaml); } catch (err) { return (err as Error).message.split('\n').filter(Boolean); }
  return [];
};

describe('config: notifications', () => {
  it('absent: no notifications', () => {
    assert.equal(load('').registry.notifications, undefined);
  });

  it('every key, Distribution spelling, defaults filled', () => {
    const n = load(`registry:
  notifications:
    events:
      includereferences: true
    journaldirectory: var/notify
    endpoints:
      - name: alistener
        url: https://my.listener.com/event
        headers:
          Authorization: [Bearer <your token>]
        timeout: 500ms
        threshold: 5
        backoff: 1s
        ignoredmediatypes:
          - application/octet-stream
        ignore:
          mediatypes: [application/vnd.oci.image.config.v1+json]
          actions: [pull]
        signingkey: k
      - name: minimal
        url: http://127.0.0.1:9000/
        disabled: true
`).registry.notifications;
    assert.ok(n);
    assert.equal(n.journaldirectory, '/etc/berth/var/notify');
    assert.equal(n.events.includereferences, true);
    assert.deepEqual(n.endpoints[0], {
      name: 'alistener', url: 'https://my.listener.com/event', headers: { Authorization: ['Bearer <your token>'] },
      timeout: 500, threshold: 5, backoff: 1000, disabled: false, ignoredmediatypes: ['application/octet-stream'],
      ignore: { mediatypes: ['application/vnd.oci.image.config.v1+json'], actions: ['pull'] }, signingkey: 'k',
    });
    assert.deepEqual(n.endpoints[1], {
      name: 'minimal', url: 'http://127.0.0.1:9000/', headers: {}, timeout: 1000, threshold: 10, backoff: 1000,
      disabled: true, ignoredmediatypes: [], ignore: { mediatypes: [], actions: [] },
    });
  });

  it('problems are reported with positions', () => {
    const p = problems(`registry:
  notifications:
    endpoints:
      - name: a
        url: ftp://x/
        ignore: { actions: [pull, fetch] }
      - url: http://x/
      - name: a
        url: http://y/
`);
    assert.ok(p.some((l) => /:5:14 +registry\.notifications\.endpoints\.0\.url +expected an http:\/\/ or https:\/\/ URL/.test(l)), p.join('\n'));
    assert.ok(p.some((l) => /registry\.notifications\.endpoints\.0\.ignore\.actions\.1 +expected one of push, pull, mount, delete/.test(l)), p.join('\n'));
    assert.ok(p.some((l) => /registry\.notifications\.endpoints\.1\.name +missing required key/.test(l)), p.join('\n'));
    assert.ok(p.some((l) => /:8:15 +registry\.notifications\.endpoints\.2\.name +duplicate endpoint name "a"/.test(l)), p.join('\n'));
  });
});
