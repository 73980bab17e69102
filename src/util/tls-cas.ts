// The certificate authorities a TLS client of berth trusts by default when it is given more (a `ca` option replaces
// Node's default list, so whoever adds a CA passes these too): Node's bundled CAs, NODE_EXTRA_CA_CERTS and the
// operating system's store (Node >= 22.15; else the bundled ones). Used by `berth healthcheck` (the server's own
// certificates added) and the S3 driver (AWS_CA_BUNDLE added).
import * as tls from 'node:tls';

export function systemCas(): string[] {
  if (typeof tls.getCACertificates !== 'function') return [...tls.rootCertificates];
  const all = new Set([...tls.getCACertificates('bundled'), ...tls.getCACertificates('extra')]);
  try { for (const c of tls.getCACertificates('system')) all.add(c); } catch { /* no readable system store */ }
  return [...all];
}
