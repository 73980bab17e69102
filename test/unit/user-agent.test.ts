import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_REJECT_UA, DEFAULT_REJECT_UA_RE, compileUserAgentPattern, isPreV16Docker, isRejectedUserAgent,
} from '../../src/gateway/user-agent.js';

// [user agent, rejected by the nginx pattern, pre-1.6 docker]
const TABLE: Array<[string | undefined, boolean, boolean]> = [
  // docker 1.3 / 1.4 / 1.5 releases: rejected
  ['docker/1.3.3 go/go1.3.3 git-commit/d344625 kernel/3.16.0-4-amd64 os/linux arch/amd64', true, true],
  ['docker/1.4.1 go/go1.3.3 git-commit/5bc2ff8 kernel/3.13.0 os/linux arch/amd64', true, true],
  ['docker/1.5.0 go/go1.4.1 git-commit/a8a31ef kernel/3.13.0-44-generic os/linux arch/amd64', true, true],
  ['docker/1.5.1', true, true],
  // the lookahead 5(?!\.[0-9]-dev): one-digit 1.5.x dev builds pass, two-digit ones do not
  ['docker/1.5.0-dev go/go1.4.2 git-commit/4749651 kernel/3.16.0', false, true],
  ['docker/1.5.1-dev', false, true],
  ['docker/1.5.10-dev', true, true],
  // older and newer docker engines
  ['docker/1.2.0 go/go1.3.1', false, true],
  ['docker/1.0.1', false, true],
  ['docker/1.6.0 go/go1.4.2 git-commit/4749651 kernel/3.19.0 os/linux arch/amd64', false, false],
  ['docker/1.6.2', false, false],
  ['docker/1.13.1 go/go1.7.5 git-commit/092cba3 kernel/4.9.0 os/linux arch/amd64', false, false],
  ['docker/1.12.6', false, false],
  ['docker/20.10.7 go/go1.13.15 git-commit/b0f5bc3 kernel/5.10.0-8-amd64 os/linux arch/amd64 UpstreamClient(Docker-Client/20.10.7 \\(linux\\))', false, false],
  ['docker/24.0.5 go/go1.20.6 git-commit/a61e2b4 kernel/6.2.0 os/linux arch/amd64', false, false],
  // the prefix match is textual: a hypothetical docker/1.30 or 1.40 would be caught
  ['docker/1.30.0', true, false],
  // Go's agents: only the very old "Go 1.1 package http" (a space after Go)
  ['Go 1.1 package http', true, true],
  ['Go-http-client/1.1', false, false],
  ['Go-http-client/2.0', false, false],
  // case-sensitive like nginx's ~
  ['Docker/1.5.0', false, false],
  ['go 1.1 package http', false, false],
  // other clients: never matched by the pattern
  ['containerd/v1.7.2', false, false],
  ['containerd/1.6.21+unknown', false, false],
  ['skopeo/1.9.3', false, false],
  ['libpod/4.3.1', false, false],
  ['Buildah/1.28.2', false, false],
  ['containers/5.24.1 (github.com/containers/image)', false, false],
  ['crane/v0.16.1 go-containerregistry/v0.16.1', false, false],
  ['oras/1.1.0', false, false],
  ['curl/7.88.1', false, false],
  ['Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0', false, false],
  // must be anchored at the start
  ['x docker/1.5.0', false, false],
  [' Go 1.1 package http', false, false],
  ['', false, false],
  [undefined, false, false],
];

test('DEFAULT_REJECT_UA is the nginx recipe pattern, byte for byte', () => {
  assert.equal(DEFAULT_REJECT_UA, String.raw`^(docker\/1\.(3|4|5(?!\.[0-9]-dev))|Go ).*$`);
  assert.equal(DEFAULT_REJECT_UA_RE.source, DEFAULT_REJECT_UA);
  assert.equal(DEFAULT_REJECT_UA_RE.flags, '');
});

for (const [ua, rejected, pre16] of TABLE) {
  test(`user agent ${JSON.stringify(ua)} → ${rejected ? 'rejected' : 'allowed'}${pre16 ? ', pre-1.6' : ''}`, () => {
    assert.equal(isRejectedUserAgent(ua), rejected);
    assert.equal(isRejectedUserAgent(ua, DEFAULT_REJECT_UA_RE), rejected);
    assert.equal(isPreV16Docker(ua), pre16);
  });
}

test('the compiled pattern is stateless across calls', () => {
  for (let i = 0; i < 3; i++) assert.equal(isRejectedUserAgent('docker/1.4.1'), true);
});

test('a custom pattern replaces the default', () => {
  const re = compileUserAgentPattern('^curl/');
  assert.equal(isRejectedUserAgent('curl/8.0', re), true);
  assert.equal(isRejectedUserAgent('docker/1.4.1', re), false);
  assert.throws(() => compileUserAgentPattern('('), SyntaxError);
});
