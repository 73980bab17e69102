// `berth healthcheck [--config FILE] [--timeout D] [--client-cert F --client-key F]`: the container probe
// (Dockerfile HEALTHCHECK, compose, Kubernetes exec probes). Reads the config serve reads (same discovery, same
// REGISTRY_* overrides) and sends one GET to the configured listener's <prefix>/v2/: healthy on any answer below
// 500 (401 with auth). It writes nothing, starts nothing and never talks to anything but the configured listener.
import { existsSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import * as tls from 'node:tls';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/values.js';
import { normalizePrefix } from '../gateway/url-mapping.js';
import { pemCertificates, readPem, systemCas } from '../util/tls-cas.js';
import { findConfig } from './config-path.js';

export interface HealthcheckIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** Environment for REGISTRY_CONFIGURATION_PATH and the REGISTRY_* overrides. Default process.env. */
  env?: Record<string, string | undefined>;
  /** Probe for /etc/docker/registry/config.yml. Default existsSync. */
  exists?(path: string): boolean;
}

const DEFAULT_TIMEOUT_MS = 5000;

const USAGE = `usage: berth healthcheck [--config FILE] [--timeout DURATION] [--client-cert FILE --client-key FILE]
  Probes the listener the config describes: GET <urls.prefix>/v2/ over TLS when tls: is configured, on the
  listen port, at loopback when listen is a wildcard (0.0.0.0 → 127.0.0.1; :port or [::] → 127.0.0.1, then ::1).
  Healthy: any answer below 500 (401 with auth). A registry.health check that fails makes /v2/ answer 503,
  so the probe follows those checks too. Without --config the config is found as serve finds it.
  TLS: the server's certificate must verify against the configured tls.certificate (trusted as is, for a
  self-signed or private-CA certificate) or the system CAs; its name is not checked (the probe dials an
  address, not the registry's public name).
  tls.clientauth require-*: presents --client-cert/--client-key, else the server's own certificate and key;
  when the server refuses that certificate after its own verified, the listener counts as healthy
  (handshake only, said on stdout).
  --timeout D   give up after D (Go duration, default 5s)
  exit: 0 healthy, 1 unhealthy or invalid config (one line on stderr), 2 usage error`;

export async function runHealthcheckCommand(argv: string[], io: HealthcheckIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        timeout: { type: 'string', short: 't' },
        'client-cert': { type: 'string' },
        'client-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr.write(`berth healthcheck: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) { io.stdout.write(`${USAGE}\n`); return 0; }
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (values.timeout !== undefined) {
    const d = parseDuration(values.timeout);
    if ('error' in d || d.ms <= 0) {
      io.stderr.write(`berth healthcheck: --timeout: ${'error' in d ? d.error : 'must be more than 0'}\n${USAGE}\n`);
      return 2;
    }
    timeoutMs = d.ms;
  }
  if ((values['client-cert'] === undefined) !== (values['client-key'] === undefined)) {
    io.stderr.write(`berth healthcheck: --client-cert and --client-key go together\n${USAGE}\n`);
    return 2;
  }

  const env = io.env ?? process.env;
  const where = findConfig({ argument: values.config, env, exists: io.exists ?? existsSync });
  let config: Config;
  try {
    config = await loadConfig(where.file, { env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const [first, ...more] = err.message.split('\n');
    io.stderr.write(`berth healthcheck: unhealthy: invalid configuration (${where.file}, ${where.reason}): ${first}`
      + `${more.length ? ` (and ${more.length} more: berth check-config)` : ''}\n`);
    return 1;
  }
  if (config.listen.port === 0) {
    io.stderr.write(`berth healthcheck: unhealthy: ${where.file}: listen port is 0 (picked at start), nothing to probe\n`);
    return 1;
  }

  let tlsOptions: TlsProbeOptions | undefined;
  if (config.tls) {
    try {
      tlsOptions = probeTls(config, values['client-cert'], values['client-key']);
    } catch (err) {
      io.stderr.write(`berth healthcheck: unhealthy: ${(err as Error).message}\n`);
      return 1;
    }
  }
  const path = `${normalizePrefix(config.urls?.prefix ?? '')}/v2/`;
  const deadline = AbortSignal.timeout(timeoutMs);
  const failures: string[] = [];
  for (const host of probeHosts(config.listen.host)) {
    const url = `${tlsOptions ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}${path}`;
    const r = await probe(url, tlsOptions, deadline, timeoutMs);
    if (r.healthy) {
      io.stdout.write(`healthy: ${url} ${r.why}\n`);
      return 0;
    }
    failures.push(`${url}: ${r.why}`);
    if (!r.tryNext || deadline.aborted) break;
  }
  io.stderr.write(`berth healthcheck: unhealthy: ${failures.join('; ')}\n`);
  return 1;
}

/** The addresses to dial for a listen host: a wildcard means "every address", so loopback is one of them. */
export function probeHosts(listenHost: string): string[] {
  if (listenHost === '0.0.0.0' || listenHost === '') return ['127.0.0.1'];
  // `:port` / `[::]:port`: dual-stack (IPv4 too), or IPv4 only where IPv6 is off, or IPv6 only with bindv6only.
  if (listenHost === '::') return ['127.0.0.1', '::1'];
  return [listenHost];
}

interface TlsProbeOptions {
  ca: string[];
  cert?: Buffer;
  key?: Buffer;
  /** The server may refuse our client certificate (clientauth require-* or verify-if-given). */
  clientCertMode: boolean;
}

/**
 * Trust for the probe: the system CAs plus every certificate of the configured chain file, with partial chains
 * allowed, so the configured leaf (self-signed, or from a private CA whose root the file lacks) is an anchor.
 */
function probeTls(config: Config, clientCert?: string, clientKey?: string): TlsProbeOptions {
  const t = config.tls!;
  const pems = pemCertificates(readPem(t.certificate, 'tls.certificate'));
  if (pems.length === 0) throw new Error(`${t.certificate}: no PEM certificate in tls.certificate`);
  const requires = t.clientauth === 'require-any-client-cert' || t.clientauth === 'require-and-verify-client-cert';
  const out: TlsProbeOptions = { ca: [...systemCas(), ...pems], clientCertMode: t.clientauth !== 'none' && t.clientauth !== 'request-client-cert' };
  if (clientCert !== undefined && clientKey !== undefined) {
    out.cert = Buffer.from(readPem(clientCert, '--client-cert'));
    out.key = Buffer.from(readPem(clientKey, '--client-key'));
  } else if (requires) {
    // The server's own pair: accepted by require-any-client-cert, and by require-and-verify when the same CA
    // issues server and client certificates. Otherwise the server refuses it, which still proves the listener.
    out.cert = Buffer.from(pems.join('\n'));
    out.key = Buffer.from(readPem(t.key, 'tls.key'));
  }
  return out;
}

interface ProbeResult { healthy: boolean; why: string; tryNext?: boolean }

/** Connection failures worth trying the next address for (the address is not served), not a broken server. */
const NOT_LISTENING = new Set(['ECONNREFUSED', 'EADDRNOTAVAIL', 'ENETUNREACH', 'EAFNOSUPPORT', 'EHOSTUNREACH']);

/** TLS alerts a server sends when it refuses the client certificate. Under TLS 1.3 they come after the handshake
 *  (the server's certificate verified); under TLS 1.2 in the middle of it, before Node checks the server's. */
const CLIENT_CERT_REFUSED = /ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)$/;

function probe(url: string, t: TlsProbeOptions | undefined, deadline: AbortSignal, timeoutMs: number): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    let handshakeDone = false;
    const headers = { 'user-agent': 'berth-healthcheck', accept: 'application/json' };
    const options = t
      ? {
        headers, signal: deadline, agent: false as const, ca: t.ca, cert: t.cert, key: t.key,
        allowPartialTrustChain: true, rejectUnauthorized: true,
        // The chain is verified (above); the name is not: the probe dials the listen address (127.0.0.1, ::1
        // or an IP), which a certificate issued for the registry's public name rarely lists. Trusting the
        // configured certificate itself is what ties the answer to this registry.
        checkServerIdentity: () => undefined,
      }
      : { headers, signal: deadline, agent: false as const };
    const req = (t ? httpsRequest : httpRequest)(url, options, (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (body.length < 4096) body += c; });
      res.on('error', () => undefined);
      res.on('end', () => resolve(judge(res, body)));
    });
    req.on('socket', (s) => { if (t) (s as tls.TLSSocket).once('secureConnect', () => { handshakeDone = true; }); });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (deadline.aborted) { resolve({ healthy: false, why: `no answer within ${timeoutMs} ms` }); return; }
      const code = err.code ?? '';
      if (t?.clientCertMode && (CLIENT_CERT_REFUSED.test(code) || (handshakeDone && (code === 'ECONNRESET' || code === 'EPIPE')))) {
        resolve({
          healthy: true,
          why: `TLS handshake only: the server's certificate verified, then it refused the client certificate (${code}); `
            + 'give --client-cert/--client-key for a /v2/ probe',
        });
        return;
      }
      resolve({ healthy: false, why: describe(err), tryNext: NOT_LISTENING.has(code) });
    });
    req.end();
  });
}

function judge(res: IncomingMessage, body: string): ProbeResult {
  const status = res.statusCode ?? 0;
  if (status === 400 && /plain HTTP request was sent to HTTPS port/.test(body)) {
    return { healthy: false, why: 'the listener speaks TLS but the config has no tls: section (does serve read another config?)' };
  }
  if (status < 500) return { healthy: true, why: `answered ${status}` };
  let detail = '';
  try {
    const e = (JSON.parse(body) as { errors?: Array<{ code?: string; detail?: { checks?: string[] } }> }).errors?.[0];
    if (e?.code) detail = ` ${e.code}${e.detail?.checks?.length ? ` (failing health checks: ${e.detail.checks.join(', ')})` : ''}`;
  } catch { /* not JSON */ }
  return { healthy: false, why: `answered ${status}${detail}` };
}

function describe(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection refused (not listening)';
    case 'ECONNRESET': return 'connection reset';
    case 'ENOTFOUND': case 'EAI_AGAIN': return `cannot resolve the listen host (${err.code})`;
    // Node's hint about --use-system-ca does not apply: the probe already trusts the system store.
    default: return err.code ? `${err.code}: ${err.message.replace(/; if the root CA is installed locally.*$/, '')}` : err.message;
  }
}
