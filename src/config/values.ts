// Parsers for the few config value syntaxes that are not plain YAML scalars: Go durations and
// "host:port". Pure functions returning a value or an error message; no positions, no I/O.
import { isIP, isIPv4, isIPv6 } from 'node:net';

/** Validates one string: undefined when fine, else what was wanted (the loader adds "found …"). */
export type StringCheck = (s: string) => { wanted: string; note?: string } | undefined;

const UNIT_MS: Record<string, number> = {
  ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000,
};
// µs (U+00B5) and μs (U+03BC) as escapes: a non-ASCII character in a regex literal reaches the bundle as is
// (esbuild escapes strings, not regexes), and V8 then keeps the whole bundle source two bytes per character
// (scripts/bundle.mjs checks the output is ASCII).
const DURATION_PART = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/;
export const DURATION_HINT = 'a duration like 168h, 90m, 1h30m, 10s or 500ms';

/** Go's time.ParseDuration syntax (unsigned) → milliseconds. "0" is allowed without a unit. */
export function parseDuration(text: string): { ms: number } | { error: string } {
  if (text === '0') return { ms: 0 };
  if (/^[-+]/.test(text)) return { error: `expected ${DURATION_HINT}, found "${text}" (signed durations are not allowed)` };
  let rest = text;
  let ms = 0;
  while (rest.length > 0) {
    const m = DURATION_PART.exec(rest);
    if (!m) {
      const why = /^\d+(\.\d*)?$/.test(rest) ? ` (missing unit after "${rest}")` : '';
      return { error: `expected ${DURATION_HINT}, found "${text}"${why}` };
    }
    ms += Number(m[1]) * UNIT_MS[m[2]];
    rest = rest.slice(m[0].length);
  }
  if (text.length === 0) return { error: `expected ${DURATION_HINT}, found an empty string` };
  return { ms: Math.round(ms * 1e6) / 1e6 };
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
export const HOSTPORT_HINT = 'host:port like 127.0.0.1:5000, [::1]:5000 or :5000';

/** "host:port", "[ipv6]:port" or ":port": every address of both families, as Go's ":5000" (host "::"; a listener
 *  on it is dual-stack, and falls back to 0.0.0.0 where IPv6 is off). Port 0 picks a free port. */
export function parseHostPort(text: string): { host: string; port: number } | { error: string } {
  const bad = (why = '') => ({ error: `expected ${HOSTPORT_HINT}, found "${text}"${why}` });
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]+)$/.exec(text);
  if (!m) {
    if (isIPv6(text.replace(/:\d+$/, '')) || (text.match(/:/g)?.length ?? 0) > 1) {
      return bad(' (IPv6 hosts go in brackets)');
    }
    return bad(/:\d*$/.test(text) ? '' : ' (missing :port)');
  }
  const port = Number(m[3]);
  if (port > 65535) return bad(' (port above 65535)');
  if (m[1] !== undefined) return isIPv6(m[1]) ? { host: m[1], port } : bad(' (not an IPv6 address in brackets)');
  if (m[2] === '') return { host: '::', port };
  const host = m[2];
  if (!isIPv4(host) && !HOSTNAME.test(host)) return bad(' (invalid host name)');
  return { host, port };
}

/** What to pass as `host` to server.listen() for a parsed host: none for "::" (`:port`), so Node listens
 *  dual-stack on ::, or on 0.0.0.0 on a kernel without IPv6, where listening on "::" itself fails (EAFNOSUPPORT). */
export function listenHost(host: string): string | undefined {
  return host === '::' ? undefined : host;
}

/** The URL of a listener started with listenHost(host) that bound `address`. */
export function listenURL(host: string, address: string, port: number, scheme = 'http'): string {
  return httpURL(host === '::' ? address : host, port, scheme);
}

/** The URL clients use for an address; IPv6 hosts get brackets. */
export function httpURL(host: string, port: number, scheme = 'http'): string {
  return `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

const URL_HINT = 'an http:// or https:// URL with host and optional port, no path';

/** An upstream origin: http(s)://host[:port], nothing else (no credentials, path or query). */
export const checkUpstreamURL: StringCheck = (s) => {
  let u: URL;
  try { u = new URL(s); } catch { return { wanted: URL_HINT }; }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { wanted: URL_HINT, note: ' (scheme must be http or https)' };
  if (u.username || u.password) return { wanted: URL_HINT, note: ' (credentials are not allowed in the URL)' };
  if (u.pathname !== '/' || u.search || u.hash) return { wanted: URL_HINT, note: ' (no path or query)' };
  return undefined;
};

export const checkV2Upstream: StringCheck = (s) =>
  (s === 'embedded' || !checkUpstreamURL(s) ? undefined : { wanted: `embedded or ${URL_HINT}` });

/** A JavaScript regular expression source (PCRE-like; lookaheads work). '' disables the rule. */
export const checkRegExp: StringCheck = (s) => {
  try { new RegExp(s); return undefined; } catch (err) {
    return { wanted: 'a regular expression (or "" to disable)', note: ` (${(err as Error).message})` };
  }
};

export const checkRealm: StringCheck = (s) =>
  (s.trim() !== '' && !/[\x00-\x1f\x7f]/.test(s) ? undefined : { wanted: 'a non-empty realm without control characters' });

/** "10.0.0.0/8", "fd00::/8" or a single address. */
export const checkCidr: StringCheck = (s) => {
  const [addr, prefix, extra] = s.split('/');
  const family = isIP(addr ?? '');
  const max = family === 4 ? 32 : 128;
  const okPrefix = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= max);
  return family && extra === undefined && okPrefix ? undefined : { wanted: 'an IP address or CIDR like 10.0.0.0/8 or fd00::/8' };
};
