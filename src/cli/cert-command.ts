// `berth cert`: writes a development TLS setup: a one-off CA (its key is discarded, so it can
// never sign anything else) and a leaf for the given hostnames plus localhost/127.0.0.1/::1.
// Development only: never called for production configs, never overwrites without --force.
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import { randomBytes, X509Certificate } from 'node:crypto';
import { access, chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Logger } from '../log/logger.js';

export interface CertCommandIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** Base for a relative --out. Default process.cwd(). */
  cwd?: string;
}

export type CertErrorCode = 'BERTH_CERT_USAGE' | 'BERTH_CERT_EXISTS';

export class CertError extends Error {
  constructor(readonly code: CertErrorCode, message: string) { super(message); this.name = 'CertError'; }
}

/** Where writeDevCert puts things. `trustDir` holds only ca.crt, for `--cert-dir` of podman/skopeo. */
export interface DevCertFiles { dir: string; certificate: string; key: string; ca: string; trustDir: string }

export interface DevCertPem { cert: string; key: string; caCert: string; altNames: string[] }

export const DEFAULT_CERT_DIR = 'certs';
export const DEFAULT_CERT_DAYS = 365;
const ALWAYS = ['localhost', '127.0.0.1', '::1'];
const DNS_NAME = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const USAGE = `usage: berth cert [--hostname NAME]... [--out DIR] [--days N] [--force]
  Writes a development CA and a server certificate for NAME(s) + localhost, 127.0.0.1, ::1:
    DIR/domain.crt  DIR/domain.key (0600)  DIR/ca.crt  DIR/trust/ca.crt
  --out DIR    default ./${DEFAULT_CERT_DIR}
  --days N     validity in days, default ${DEFAULT_CERT_DAYS}
  --force      replace existing files
`;

export function devCertFiles(dir: string): DevCertFiles {
  const d = resolve(dir);
  return { dir: d, certificate: join(d, 'domain.crt'), key: join(d, 'domain.key'), ca: join(d, 'ca.crt'),
    trustDir: join(d, 'trust') };
}

/** The SAN list: every hostname (IPs as IP entries), then localhost, 127.0.0.1, ::1; no duplicates. */
export function subjectAltNames(hostnames: readonly string[]): string[] {
  const out: string[] = [];
  for (const h of [...hostnames, ...ALWAYS]) {
    const name = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
    if (!isIP(name) && !DNS_NAME.test(name)) throw new CertError('BERTH_CERT_USAGE', `invalid hostname: ${JSON.stringify(h)}`);
    const key = isIP(name) ? name : name.toLowerCase();
    if (!out.includes(key)) out.push(key);
  }
  return out;
}

/** Generates the CA and the leaf in memory (RSA 2048, SHA-256). */
export async function generateDevCert(hostnames: readonly string[], days = DEFAULT_CERT_DAYS): Promise<DevCertPem> {
  checkDays(days);
  const altNames = subjectAltNames(hostnames);
  const notBeforeDate = new Date(Date.now() - 60 * 60 * 1000);   // an hour of clock-skew tolerance
  const notAfterDate = new Date(notBeforeDate.getTime() + days * 86_400_000);
  const common = { keyType: 'rsa' as const, keySize: 2048, algorithm: 'sha256', notBeforeDate, notAfterDate };
  // Loaded here, not at the top: selfsigned (@peculiar/x509, ~200 modules) costs ~110 ms to load and
  // `serve` imports this file for --dev-cert, which rarely generates anything.
  const { generate } = await import('selfsigned');

  const ca = await generate([
    { name: 'commonName', value: `berth development CA ${randomBytes(4).toString('hex')}` },
    { name: 'organizationName', value: 'berth (development only)' },
  ], {
    ...common,
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: 'commonName', value: altNames[0]! }], {
    ...common,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: altNames.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) },
    ],
  });
  return { cert: pem(leaf.cert), key: pem(leaf.private), caCert: pem(ca.cert), altNames };
}

/**
 * Generates and writes DIR/domain.crt, DIR/domain.key (0600), DIR/ca.crt and DIR/trust/ca.crt.
 * Throws CertError BERTH_CERT_EXISTS, naming the files, if any exists and `force` is not set.
 * Each file is written to a temp name and renamed, so a watching server never reads half a file.
 */
export async function writeDevCert(dir: string, hostnames: readonly string[],
  opts: { days?: number; force?: boolean } = {}): Promise<DevCertFiles & { pem: DevCertPem }> {
  checkDays(opts.days ?? DEFAULT_CERT_DAYS);
  subjectAltNames(hostnames);   // usage errors before "exists" errors
  const files = devCertFiles(dir);
  const targets = [files.certificate, files.key, files.ca, join(files.trustDir, 'ca.crt')];
  if (!opts.force) {
    const existing = (await Promise.all(targets.map(async (f) => ((await exists(f)) ? f : null)))).filter(Boolean);
    if (existing.length > 0) {
      throw new CertError('BERTH_CERT_EXISTS', `refusing to overwrite ${existing.join(', ')} (use --force)`);
    }
  }
  const p = await generateDevCert(hostnames, opts.days);
  await mkdir(files.trustDir, { recursive: true });
  await atomicWrite(files.key, p.key, 0o600);
  await atomicWrite(files.certificate, p.cert, 0o644);
  await atomicWrite(files.ca, p.caCert, 0o644);
  await atomicWrite(join(files.trustDir, 'ca.crt'), p.caCert, 0o644);
  return { ...files, pem: p };
}

/**
 * For `npm start` in development: keeps DIR/domain.crt + domain.key when both exist, otherwise
 * generates them (and says so at warn level). Throws BERTH_CERT_EXISTS if only one of them exists.
 */
export async function ensureDevCert(dir: string, hostnames: readonly string[], log: Logger):
  Promise<{ created: boolean; certificate: string; key: string; ca: string }> {
  const files = devCertFiles(dir);
  const [haveCert, haveKey] = await Promise.all([exists(files.certificate), exists(files.key)]);
  if (haveCert && haveKey) return { created: false, certificate: files.certificate, key: files.key, ca: files.ca };
  if (haveCert || haveKey) {
    throw new CertError('BERTH_CERT_EXISTS',
      `found ${haveCert ? files.certificate : files.key} without ${haveCert ? files.key : files.certificate}; remove it or run berth cert --force`);
  }
  const w = await writeDevCert(dir, hostnames, { force: true });
  log.warn({ certificate: w.certificate, ca: w.ca, altNames: w.pem.altNames },
    'generated a self-signed development certificate; clients must trust ca.crt (podman/skopeo: --cert-dir trust/)');
  return { created: true, certificate: w.certificate, key: w.key, ca: w.ca };
}

/** `berth cert …` → exit code: 0 written, 1 refused or failed, 2 usage error. */
export async function runCertCommand(argv: string[], io: CertCommandIo): Promise<number> {
  let values: { hostname?: string[]; out?: string; days?: string; force?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv, allowPositionals: false, strict: true,
      options: {
        hostname: { type: 'string', multiple: true }, out: { type: 'string' }, days: { type: 'string' },
        force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr.write(`berth cert: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) { io.stdout.write(USAGE); return 0; }
  const days = values.days === undefined ? DEFAULT_CERT_DAYS : Number(values.days);
  const dir = resolve(io.cwd ?? process.cwd(), values.out ?? DEFAULT_CERT_DIR);
  try {
    const w = await writeDevCert(dir, values.hostname ?? [], { days, force: values.force });
    const leaf = new X509Certificate(w.pem.cert);
    const rel = (f: string) => relative(io.cwd ?? process.cwd(), f) || '.';
    io.stdout.write([
      `wrote ${rel(w.certificate)}  for ${w.pem.altNames.join(', ')}, valid until ${leaf.validTo}`,
      `wrote ${rel(w.key)}  (mode 0600)`,
      `wrote ${rel(w.ca)}  (the CA that signed it; its private key was discarded)`,
      `wrote ${rel(join(w.trustDir, 'ca.crt'))}`,
      `trust it:  skopeo/podman --cert-dir ${rel(w.trustDir)}   |   docker: copy ${rel(w.ca)} to /etc/docker/certs.d/HOST:PORT/ca.crt`,
      `serve it:  tls: { certificate: ${rel(w.certificate)}, key: ${rel(w.key)} }`,
      '',
    ].join('\n'));
    return 0;
  } catch (err) {
    if (err instanceof CertError) {
      io.stderr.write(`berth cert: ${err.message}\n${err.code === 'BERTH_CERT_USAGE' ? USAGE : ''}`);
      return err.code === 'BERTH_CERT_USAGE' ? 2 : 1;
    }
    io.stderr.write(`berth cert: ${(err as Error).message}\n`);
    return 1;
  }
}

function checkDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new CertError('BERTH_CERT_USAGE', `--days must be an integer 1..3650, got ${days}`);
}

function pem(s: string): string { return s.endsWith('\n') ? s.replace(/\r\n/g, '\n') : `${s.replace(/\r\n/g, '\n')}\n`; }

async function exists(f: string): Promise<boolean> {
  try { await access(f); return true; } catch { return false; }
}

async function atomicWrite(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await chmod(tmp, mode);   // writeFile's mode is filtered by the umask
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
