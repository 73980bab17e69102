// Range header parsing for blob GET (RFC 9110 §14) and Content-Range parsing for chunked uploads
// (the OCI spec's "<start>-<end>" form). Pure functions; statuses are the caller's business.

export type ByteRange = { start: number; end: number };   // inclusive

const SINGLE_RANGE = /^bytes=(\d*)-(\d*)$/;

/**
 * A single `Range: bytes=a-b | a- | -suffix` against a blob of `size` bytes.
 * Returns undefined to serve the whole blob (no header, a malformed header, or several ranges:
 * RFC 9110 lets a server ignore Range, and we serve multi-range requests whole with 200),
 * 'unsatisfiable' for a valid range that does not overlap the blob (→ 416), else the clamped range.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = SINGLE_RANGE.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {                                  // suffix: the last b bytes
    const n = Number(b);
    if (!Number.isSafeInteger(n)) return undefined;
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Number(b);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return undefined;
  if (b !== '' && end < start) return undefined;   // syntactically invalid: ignore
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

const CONTENT_RANGE = /^(?:bytes[ =])?(\d+)-(\d+)$/;

/**
 * An upload chunk's `Content-Range: <start>-<end>` (inclusive; "bytes=" / "bytes " prefixes are
 * tolerated for clients that send them). undefined when absent; 'invalid' when malformed or end < start.
 */
export function parseContentRange(header: string | undefined): ByteRange | 'invalid' | undefined {
  if (header === undefined || header === '') return undefined;
  const m = CONTENT_RANGE.exec(header.trim());
  if (!m) return 'invalid';
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return 'invalid';
  return { start, end };
}

/** Content-Length as a number; undefined when absent. */
export function contentLength(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const n = Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
