// Test certificates generated on the fly with `selfsigned` (EC P-256, SHA-256, fast), and a
// pino logger whose lines can be awaited (with a deadline). Nothing here is written to disk unless a test does it.
import { generate } from 'selfsigned';
import { X509Certificate, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { nextEvent } from './wait.js';

export interface TestCert { cert: string; key: string; fingerprint256: string }

/**
 * A self-signed leaf with SANs DNS:localhost, IP:127.0.0.1 and IP:::1 (or only the DNS names given). The subject CN is random
 * so that several test certificates can be trusted side by side (OpenSSL finds issuers by name).
 */
export async function makeTestCert(cn = `berth-test-${randomUUID()}`, o: { dnsNames?: string[] } = {}): Promise<TestCert> {
  const names = o.dnsNames
    ? o.dnsNames.map((value) => ({ type: 2 as const, value }))
    : [{ type: 2 as const, value: 'localhost' }, { type: 7 as const, ip: '127.0.0.1' }, { type: 7 as const, ip: '::1' }];
  const p = await generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec', algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names },
    ],
  });
  return { cert: p.cert, key: p.private, fingerprint256: new X509Certificate(p.cert).fingerprint256 };
}

export interface CapturedLog { log: Logger; lines: Array<Record<string, any>>; events: EventEmitter;
  /** Resolves with the first line (already logged or logged within `timeoutMs`, default 10 s) for which
   *  `match` is true; rejects naming `what` after that. */
  waitFor(match: (line: Record<string, any>) => boolean, what?: string, timeoutMs?: number): Promise<Record<string, any>> }

export function captureLog(level = 'debug'): CapturedLog {
  const lines: Array<Record<string, any>> = [];
  const events = new EventEmitter();
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) {
        if (!l) continue;
        const obj = JSON.parse(l);
        lines.push(obj);
        events.emit('line', obj);
      }
      cb();
    },
  });
  const log = pino({ level }, dest);
  return {
    log, lines, events,
    async waitFor(match, what = 'a matching log line', timeoutMs = 10_000) {
      const found = lines.find(match);
      if (found) return found;
      const [line] = await nextEvent<[Record<string, any>]>(events, 'line', what,
        { timeoutMs, match, detail: () => `last lines: ${JSON.stringify(lines.slice(-5))}` });
      return line;
    },
  };
}
