// Old-client rejection, after Distribution's nginx recipe: a User-Agent matching DEFAULT_REJECT_UA
// gets 404 on /v2 (docker 1.3–1.5 speak a v2 dialect the registry does not serve, and docker <1.6
// pinged with Go's default "Go 1.1 package http" agent). Pure functions; no HTTP, no logging.

/**
 * nginx recipe: `if ($http_user_agent ~ "^(docker\/1\.(3|4|5(?!\.[0-9]-dev))|Go ).*$") { return 404; }`.
 * nginx's `~` is case-sensitive, and so is this. Quirks kept on purpose (same bytes, same answers):
 * `docker/1.5.0-dev` and `docker/1.5.1-dev` pass (the lookahead), `docker/1.5.10-dev` does not,
 * `Go-http-client/1.1` passes (only "Go" followed by a space matches), skopeo/podman/buildah pass.
 */
export const DEFAULT_REJECT_UA = '^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$';

/** DEFAULT_REJECT_UA compiled once. No `g`/`y` flag, so `test()` keeps no state between calls. */
export const DEFAULT_REJECT_UA_RE: RegExp = new RegExp(DEFAULT_REJECT_UA);

/** Compiles an operator-supplied pattern (nginx/PCRE-style source, case-sensitive). Throws SyntaxError. */
export function compileUserAgentPattern(source: string): RegExp {
  return new RegExp(source);
}

/** True when the request's User-Agent matches `re`. A missing or empty agent never matches (as in nginx). */
export function isRejectedUserAgent(ua: string | undefined, re: RegExp = DEFAULT_REJECT_UA_RE): boolean {
  if (!ua) return false;
  return re.test(ua);
}

const PRE_V16 = /^(docker\/(0\.|1\.[0-5](?![0-9]))|Go )/;

/**
 * True for docker engines older than 1.6 (`docker/0.x`, `docker/1.0` … `docker/1.5.x`, including
 * -dev builds) and for Go's default agent `Go 1.1 package http` that those engines used on ping.
 * For routing /v1 traffic to a configured v1 upstream; `docker/1.13.1` and `docker/20.10.7` are not.
 */
export function isPreV16Docker(ua: string | undefined): boolean {
  if (!ua) return false;
  return PRE_V16.test(ua);
}
