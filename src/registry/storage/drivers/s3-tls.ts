// The S3 driver's trust in an https store, without the SDK (s3.ts reads these at start; s3-client.ts, which loads
// the SDK, applies them): the CAs of AWS_CA_BUNDLE, which Distribution's driver (the AWS SDK for Go) reads and the
// AWS SDK for JavaScript does not, and the TLS error codes that mean "the configuration does not trust the store".
import { pemCertificates, readPem, systemCas } from '../../../util/tls-cas.js';

/** The error code of a CA bundle that cannot be read or holds no certificate. */
export const CA_BUNDLE_UNREADABLE = 'S3_CA_BUNDLE_UNREADABLE';

/** Node's codes for a store certificate that does not verify against the trusted CAs. */
export const UNTRUSTED_CERT = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_SIGNATURE_FAILURE',
]);

/**
 * The CAs to trust for the store: the default ones (util/tls-cas.ts: Node's, NODE_EXTRA_CA_CERTS, the system's) and
 * every certificate of the PEM file at `path` (AWS_CA_BUNDLE). Added, never instead: a bundle holding only a private
 * CA still lets berth reach a store with a public certificate. Throws (code CA_BUNDLE_UNREADABLE) when the file
 * cannot be read or holds no certificate.
 */
export function storeCas(path: string): string[] {
  let text: string;
  try {
    text = readPem(path, "the store's CA bundle");
  } catch (err) {
    throw Object.assign(new Error(`AWS_CA_BUNDLE=${(err as Error).message}`), { code: CA_BUNDLE_UNREADABLE });
  }
  const pems = pemCertificates(text);
  if (pems.length === 0) throw Object.assign(new Error(`AWS_CA_BUNDLE=${path}: no PEM certificate in the store's CA bundle`), { code: CA_BUNDLE_UNREADABLE });
  return [...systemCas(), ...pems];
}
