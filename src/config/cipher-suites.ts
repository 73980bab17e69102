// TLS cipher suite names for `tls.ciphersuites` (and Distribution's `http.tls.ciphersuites`): Go's names, as
// Distribution takes them (crypto/tls CipherSuites() and InsecureCipherSuites()), and OpenSSL's, mapped to the
// one OpenSSL string Node's `ciphers` option takes; plus berth's default, Mozilla's "intermediate" profile
// (forward-secret AEAD suites only). Pure: no I/O, no sockets; only asks node:tls which names this OpenSSL has.
import { getCiphers } from 'node:tls';

/** The TLS 1.3 suites, in Mozilla's order (Go and OpenSSL spell them alike). Always on, as in Go, unless the list names some. */
export const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const;

/** Mozilla "intermediate" (v5.7) TLS 1.2 suites, without the DHE ones (berth configures no DH parameters and Go has no DHE). */
export const DEFAULT_TLS12_SUITES = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
] as const;

/** Go's crypto/tls names (TLS 1.0–1.2) → OpenSSL's. */
export const GO_CIPHER_SUITES: Readonly<Record<string, string>> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',   // Go's older aliases
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: 'ECDHE-RSA-DES-CBC3-SHA',
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: 'DES-CBC3-SHA',
  TLS_ECDHE_ECDSA_WITH_RC4_128_SHA: 'ECDHE-ECDSA-RC4-SHA',
  TLS_ECDHE_RSA_WITH_RC4_128_SHA: 'ECDHE-RSA-RC4-SHA',
  TLS_RSA_WITH_RC4_128_SHA: 'RC4-SHA',
};

let available: Set<string> | undefined;
const opensslHas = (name: string): boolean => (available ??= new Set(getCiphers())).has(name.toLowerCase());

/** The OpenSSL name of one configured suite (Go or OpenSSL spelling), or what was wanted instead (config message). */
export function opensslSuite(name: string): { name: string } | { wanted: string; note?: string } {
  const wanted = 'a cipher suite name, Go\'s (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) or OpenSSL\'s (ECDHE-RSA-AES128-GCM-SHA256)';
  if (!/^[A-Za-z0-9_-]+$/.test(name)) return { wanted, note: ' (one name per list item)' };
  const mapped = GO_CIPHER_SUITES[name] ?? name;
  if (opensslHas(mapped)) return { name: mapped.toUpperCase() };   // OpenSSL's names are upper case; getCiphers() lowers them
  return GO_CIPHER_SUITES[name]
    ? { wanted: 'a cipher suite this OpenSSL offers', note: ` (${mapped} is not in OpenSSL ${process.versions.openssl})` }
    : { wanted, note: ' (unknown)' };
}

/**
 * The `ciphers` string for Node's TLS options. [] → the default (TLS 1.3 suites + Mozilla intermediate). A list
 * without TLS 1.3 suites keeps TLS 1.3's defaults (Go's crypto/tls does not let them be configured either);
 * the TLS 1.2 suites keep the configured order. Throws on a name opensslSuite refuses (load.ts checked them).
 */
export function cipherString(names: readonly string[]): string {
  if (names.length === 0) return [...TLS13_SUITES, ...DEFAULT_TLS12_SUITES].join(':');
  const suites = names.map((n) => {
    const r = opensslSuite(n);
    if ('wanted' in r) throw new TypeError(`tls.ciphersuites: ${n}: expected ${r.wanted}${r.note ?? ''}`);
    return r.name;
  });
  const has13 = suites.some((s) => s.startsWith('TLS_'));
  return [...new Set([...(has13 ? [] : TLS13_SUITES), ...suites])].join(':');
}
