// `n` / `last` query handling and the RFC 8288 `Link: <...>; rel="next"` header for the tag list and
// the catalog (spec "Listing Tags", Distribution's catalog). Limits are constants, not per request.
import { PaginationNumberInvalidError } from '../core/errors.js';

export const MAX_PAGE = 1000;
export const CATALOG_DEFAULT_PAGE = 100;
const DIGITS = /^\d+$/;

/** Parses `n`: undefined when absent; PaginationNumberInvalidError when not a number in 0..MAX_PAGE. */
export function parseN(q: URLSearchParams | undefined): number | undefined {
  const raw = q?.get('n');
  if (raw === null || raw === undefined) return undefined;
  if (!DIGITS.test(raw) || raw.length > 7) throw new PaginationNumberInvalidError(raw.slice(0, 20));
  const n = Number(raw);
  if (n > MAX_PAGE) throw new PaginationNumberInvalidError(raw);
  return n;
}

/** One page of an already sorted list: entries strictly after `last`, at most n. */
export function page(sorted: string[], n: number | undefined, last: string | undefined): { items: string[]; more: boolean } {
  let from = 0;
  if (last !== undefined) {
    // first index with sorted[i] > last (binary search; lists are lexical)
    let lo = 0, hi = sorted.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid] <= last) lo = mid + 1; else hi = mid; }
    from = lo;
  }
  if (n === undefined) return { items: sorted.slice(from), more: false };
  return { items: sorted.slice(from, from + n), more: from + n < sorted.length };
}

export function nextLink(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}
