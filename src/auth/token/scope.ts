// The token spec's vocabulary, shared by the verifier and the issuer: scopes (`repository:team/app:pull,push`),
// the JWT `access` claim, which access a claim covers, and the Bearer challenge (RFC 6750 §3 as Distribution
// writes it). Pure: no I/O, no keys.
import type { Access } from '../../http/v2-routes.js';

/** One entry of a token's `access` claim (Distribution's ResourceActions). */
export interface ResourceActions {
  type: string;
  /** e.g. `plugin` in `repository(plugin):name:pull`; carried, not interpreted. */
  class?: string;
  name: string;
  actions: string[];
}

/** The claims berth reads and writes (RFC 7519 names plus the spec's `access`). */
export interface TokenClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  access?: ResourceActions[];
}

/**
 * Parses one scope (`type[(class)]:name:actions`): the name is everything between the first and the last colon
 * (a name may hold a registry host:port), actions are comma-separated. Undefined for a malformed scope.
 */
export function parseScope(scope: string): ResourceActions | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const typePart = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope.slice(last + 1).split(',').filter((a) => a !== '');
  const m = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$/.exec(typePart);
  if (!m || name === '' || actions.length === 0) return undefined;
  return { type: m[1]!, ...(m[2] ? { class: m[2] } : {}), name, actions: [...new Set(actions)] };
}

/** The scopes of a request: every `scope` parameter, each split at spaces (clients send both styles). */
export function parseScopes(values: readonly string[]): { scopes: ResourceActions[]; invalid: string[] } {
  const scopes: ResourceActions[] = [];
  const invalid: string[] = [];
  for (const v of values) {
    for (const s of v.split(' ').filter((x) => x !== '')) {
      const r = parseScope(s);
      if (r) scopes.push(r); else invalid.push(s);
    }
  }
  return { scopes: mergeScopes(scopes), invalid };
}

/** Merges entries for the same type and name (actions united, first-seen order kept). */
export function mergeScopes(list: readonly ResourceActions[]): ResourceActions[] {
  const out = new Map<string, ResourceActions>();
  for (const r of list) {
    const key = `${r.type}\0${r.name}`;
    const have = out.get(key);
    if (have) have.actions = [...new Set([...have.actions, ...r.actions])];
    else out.set(key, { ...r, actions: [...r.actions] });
  }
  return [...out.values()];
}

/** The access the route grammar derived, as scope strings (`repository:x:pull,push`). */
export function accessScopes(access: readonly Access[]): string[] {
  return mergeScopes(access.map((a) => ({ type: a.type, name: a.name, actions: [...a.actions] })))
    .map((r) => `${r.type}:${r.name}:${r.actions.join(',')}`);
}

/**
 * The items of `access` the claim does not cover, one per (resource, action): an action is covered when the
 * claim lists it, or `*`, for the same type and name (Distribution's accessSet.contains).
 */
export function missingAccess(claim: readonly ResourceActions[] | undefined, access: readonly Access[]): { type: string; name: string; action: string }[] {
  const granted = new Map<string, Set<string>>();
  for (const r of Array.isArray(claim) ? claim : []) {
    if (!r || typeof r.type !== 'string' || typeof r.name !== 'string' || !Array.isArray(r.actions)) continue;
    const key = `${r.type}\0${r.name}`;
    const set = granted.get(key) ?? new Set<string>();
    for (const a of r.actions) if (typeof a === 'string') set.add(a);
    granted.set(key, set);
  }
  const missing: { type: string; name: string; action: string }[] = [];
  for (const a of access) {
    const set = granted.get(`${a.type}\0${a.name}`);
    for (const action of a.actions) {
      if (!set || !(set.has('*') || set.has(action))) missing.push({ type: a.type, name: a.name, action });
    }
  }
  return missing;
}

/** A quoted-string (RFC 9110 §5.6.4): control characters dropped, `"` and `\` escaped. */
export function quoted(s: string): string {
  return `"${s.replace(/[\x00-\x1f\x7f]/g, '').replace(/["\\]/g, (c) => '\\' + c)}"`;
}

/** `Bearer realm="…",service="…"[,scope="…"][,error="…"]`, Distribution's challenge shape (scopes space-joined). */
export function bearerChallenge(o: { realm: string; service: string; scopes?: readonly string[]; error?: 'invalid_token' | 'insufficient_scope' }): string {
  let s = `Bearer realm=${quoted(o.realm)},service=${quoted(o.service)}`;
  if (o.scopes && o.scopes.length > 0) s += `,scope=${quoted(o.scopes.join(' '))}`;
  if (o.error) s += `,error=${quoted(o.error)}`;
  return s;
}
