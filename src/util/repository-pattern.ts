// Repository name patterns of the access rules (auth.access.rules[].repositories): their grammar (checked by the
// config loader), matching, specificity (which of two matching patterns decides) and coverage (does one pattern
// match every name another matches: check-config's unreachable rules). A pure leaf: strings in, answers out.
//
//   `*`   any characters within one path segment (`team/app-*`, `*/app`); `*` alone: exactly one segment
//   `**`  one or more whole segments; only as a whole segment (`public/**`, `**/cache`, `**`)
//         so `public/**` matches `public/x` and `public/a/b`, not `public` itself (list both to mean both)
//
// Specificity, compared segment by segment from the left; the first difference decides:
//   a literal segment  >  a segment with `*` and literal characters (more literal characters first)  >  `*`  >  `**`
//   > no segment (a pattern that ended: the longer one is more specific). Equal: the earlier rule decides.
//   e.g. for team/app:  team/app > team/app* > team/* > team/** > */app > ** ; for a/b/c:  a/b/** > a/*/c

/** A segment of a repository name: lowercase letters, digits, `.`, `_`, `-` (the spec's components) and `*`. */
const SEGMENT = /^(?:\*\*|(?=.)[a-z0-9._-]*(?:\*[a-z0-9._-]+)*\*?)$/;

export const PATTERN_HINT = 'a repository pattern like team/app, team/* or public/** (lowercase; `**` only as a whole segment)';

/** Why `s` is not a valid pattern, or undefined. */
export function patternProblem(s: string): string | undefined {
  if (s === '') return 'an empty pattern';
  const segs = s.split('/');
  for (const seg of segs) {
    if (seg === '') return 'an empty segment (leading, trailing or double "/")';
    if (!SEGMENT.test(seg)) {
      if (/\*\*/.test(seg)) return `"${seg}": \`**\` must be a whole segment`;
      if (/[A-Z]/.test(seg)) return `"${seg}": repository names are lowercase`;
      return `"${seg}": only a-z, 0-9, ".", "_", "-" and "*"`;
    }
  }
  return undefined;
}

type Kind = 0 | 1 | 2 | 3;   // ** | * | glob with literals | literal
interface Segment { text: string; kind: Kind; literals: number }

export interface RepositoryPattern {
  readonly source: string;
  readonly segments: readonly Segment[];
  matches(name: string): boolean;
}

/** Compiles a valid pattern; throws TypeError on an invalid one (the loader checks them first). */
export function compilePattern(source: string): RepositoryPattern {
  const bad = patternProblem(source);
  if (bad) throw new TypeError(`invalid repository pattern ${JSON.stringify(source)}: ${bad}`);
  const segments: Segment[] = source.split('/').map((text) => {
    if (text === '**') return { text, kind: 0, literals: 0 };
    if (text === '*') return { text, kind: 1, literals: 0 };
    const literals = text.replaceAll('*', '').length;
    return { text, kind: text.includes('*') ? 2 : 3, literals };
  });
  const re = new RegExp(`^${segments.map((s) => (s.kind === 0 ? '[^/]+(?:/[^/]+)*'
    : s.text.split('*').map(escape).join('[^/]*'))).join('/')}$`);
  return { source, segments, matches: (name) => re.test(name) };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');

/** > 0 when `a` is more specific than `b`, < 0 when less, 0 when equally (then the earlier rule decides). */
export function compareSpecificity(a: RepositoryPattern, b: RepositoryPattern): number {
  const n = Math.max(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const x = a.segments[i];
    const y = b.segments[i];
    const kx = x ? x.kind : -1;
    const ky = y ? y.kind : -1;
    if (kx !== ky) return kx - ky;
    if (x && y && x.literals !== y.literals) return x.literals - y.literals;
  }
  return 0;
}

/**
 * True when `outer` matches every name `inner` matches (sound, not complete: false may also mean "could not
 * tell", e.g. `*\/**` does cover `**\/x/**`). Used only for warnings, so a miss costs a warning, never a decision.
 */
export function covers(outer: RepositoryPattern, inner: RepositoryPattern): boolean {
  return coversFrom(outer.segments, 0, inner.segments, 0);
}

function coversFrom(q: readonly Segment[], i: number, p: readonly Segment[], j: number): boolean {
  if (i === q.length) return j === p.length;
  if (q[i]!.kind === 0) {   // ** takes one or more of inner's segments, whatever they are
    for (let k = j + 1; k <= p.length; k++) if (coversFrom(q, i + 1, p, k)) return true;
    return false;
  }
  if (j === p.length || p[j]!.kind === 0) return false;   // a single segment cannot cover one-or-more
  return segmentCovers(q[i]!.text, p[j]!.text) && coversFrom(q, i + 1, p, j + 1);
}

/** Glob `q` matches every string glob `p` matches: `p`'s `*` may only be taken by a `*` of `q`. */
function segmentCovers(q: string, p: string): boolean {
  const memo = new Map<number, boolean>();
  const go = (a: number, b: number): boolean => {
    const key = a * 1024 + b;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let r: boolean;
    if (a === q.length) r = b === p.length;
    else if (q[a] === '*') r = go(a + 1, b) || (b < p.length && go(a, b + 1));
    else r = b < p.length && p[b] !== '*' && q[a] === p[b] && go(a + 1, b + 1);
    memo.set(key, r);
    return r;
  };
  return go(0, 0);
}
