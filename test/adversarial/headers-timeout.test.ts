// Issue 14, point 13: a whole request head takes milliseconds, so a client still sending one after 20 s
// (Apache mod_reqtimeout's default; it was 60 s) is a slowloris: with the default config it gets 408 and the
// connection is closed within proxy.headertimeout plus Node's check interval (a quarter of it) and slack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigFromString } from '../../src/config/load.js';
import { rawConnect, startBerth } from './conn-support.js';

test('proxy.headertimeout defaults to 20 s: a head trickled byte by byte is cut with 408 well before the old 60 s', async (t) => {
  assert.equal(loadConfigFromString('', '/tmp/gateway.yml').proxy.headertimeout, 20_000);
  const b = await startBerth(t);   // default proxy settings
  const c = await rawConnect(t, b.port);
  c.socket.write('GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
  const timer = setInterval(() => { if (!c.closed()) c.socket.write('a'); }, 1000);
  t.after(() => clearInterval(timer));
  await c.waitClosed('the slow head to be cut (20 s + 5 s check interval + slack)', 40_000);
  clearInterval(timer);
  assert.match(c.text(), /^HTTP\/1\.1 408 /);
  assert.match(c.text(), /\r\nConnection: close\r\n/i);
});
