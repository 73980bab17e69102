// PEM certificates and trust for berth's TLS clients. systemCas(): the certificate authorities a client trusts by
// default when it is given more (a `ca` option replaces Node's default list, so whoever adds a CA passes these too):
// Node's bundled CAs, NODE_EXTRA_CA_CERTS and the operating system's store (Node >= 22.15; else the bundled ones).
// Used by `berth healthcheck` (the server's own certificates added) and the S3 driver (AWS_CA_BUNDLE added);
// pemCertificates() and readPem() by them and by the TLS and token-key loaders.
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';

export function systemCas(): string[] {
  if (typeof tls.getCACertificates !== 'function') return [...tls.rootCertificates];
  const all = new Set([...tls.getCACertificates('bundled'), ...tls.getCACertificates('extra')]);
  try { for (const c of tls.getCACertificates('system')) all.add(c); } catch { /* no readable system store */ }
  return [...all];
}

/** Every CERTIFICATE block of a PEM text, in order. */
export function pemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The text of the PEM file at `path`; else an error `PATH: cannot read WHAT (why)`. */
export function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'a directory' : code ?? (err as Error).message;
    throw new Error(`${path}: cannot read ${what} (${why})`);
  }
}
