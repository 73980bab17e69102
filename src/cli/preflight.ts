// What `serve` would fail on outside the config text, checked before it starts and by `check-config`
// with the same messages: the htpasswd file (exists, readable; lines serve would skip are warnings), the tls:
// files (readable), the storage root (a directory, or creatable, readable and writable unless read-only, with the
// top of Distribution's layout below it: a registry:2 volume), the access rules (auth.access), and token auth's key
// files (auth.issuer.key/certificate, auth.token.rootcertbundle/jwks). Each problem is named by its config key at the key's
// line:col (problemAt), so it prints like a load error. A permission problem says who berth runs as, who owns the
// path and the fix (permissions.ts). Reads only; creates nothing.
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HtpasswdError, HtpasswdFile, parseHtpasswd } from '../auth/htpasswd.js';
import { formatProblems, type ConfigProblem } from '../config/config-error.js';
import { accessPreflight } from './access-command.js';
import { problemAt } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { silentLogger } from '../log/logger.js';
import { checkStore, dataDirectory } from '../registry/storage/factory.js';
import { accessCode, accessMode, explainDenied } from './permissions.js';

/** Every problem found (none when `serve` can read and write what the config names), and the warnings
 *  serve would log at start (htpasswd lines it skips). */
export async function preflight(config: Config): Promise<{ problems: ConfigProblem[]; warnings: string[] }> {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const htpasswd = config.auth?.htpasswd;
  if (htpasswd) {
    const why = await htpasswdProblem(htpasswd.path);
    if (why) problems.push(problemAt(config, 'auth.htpasswd.path', why));
    else warnings.push(...await htpasswdWarnings(htpasswd.path));
  }
  if (config.tls) {   // readable by this user; missing files and bad PEM are named where the pair is loaded
    const { certificate, key, clientcas } = config.tls;
    const files: Array<[string, string]> = [['tls.certificate', certificate], ['tls.key', key], ...clientcas.map((f, i): [string, string] => [`tls.clientcas.${i}`, f])];
    for (const [at, file] of files) {
      const code = await accessCode(file, accessMode('read', false));
      if (code === 'EACCES' || code === 'EPERM') problems.push(problemAt(config, at, `${file}: ${await explainDenied(file, { want: 'read' })}`));
    }
  }
  if (config.auth?.access) {   // groups file, groups, unreachable rules, unknown users (cli/access-command.ts)
    const access = await accessPreflight(config);
    problems.push(...access.problems);
    warnings.push(...access.warnings.map((w) => formatProblems(config.source, [w])));
  }
  problems.push(...await tokenProblems(config));
  if (config.upstreams.v2 === 'embedded') {
    const { driver, parameters } = config.registry.storage;
    const root = dataDirectory(driver, parameters);
    const readonly = config.registry.storage.maintenance.readonly.enabled;
    const why = root === undefined ? undefined : await storageRootProblem(root, !readonly);
    if (why) problems.push(problemAt(config, `registry.storage.${driver}.rootdirectory`, why));
    const refused = await checkStore(driver, parameters);   // object stores: credentials and bucket (reads only)
    if (refused) problems.push(problemAt(config, `registry.storage.${driver}.${refused.key}`, refused.message));
  }
  return { problems, warnings };
}

/** auth.issuer's key (and certificate) and auth.token's rootcertbundle and jwks, loaded as serve loads them; the
 *  issuer's algorithm must be one auth.token.signingalgorithms allows when both are set. */
async function tokenProblems(config: Config): Promise<ConfigProblem[]> {
  const out: ConfigProblem[] = [];
  const { issuer: i, token: t } = config.auth ?? {};
  if (!i && !t) return out;
  // Loaded only when token auth is configured: keys.ts pulls in jose (~50 ms of module loading at every start).
  const { loadSigningKey, loadTrust, TokenKeyError } = await import('../auth/token/keys.js');
  if (i) {
    try {
      const key = await loadSigningKey(i.key, i.certificate);
      if (t && t.signingalgorithms.length > 0 && !t.signingalgorithms.includes(key.alg)) {
        out.push(problemAt(config, 'auth.issuer.key', `${i.key}: signs ${key.alg}, which auth.token.signingalgorithms does not allow`));
      }
    } catch (err) {
      if (!(err instanceof TokenKeyError)) throw err;
      const at = i.certificate !== undefined && err.message.startsWith(`${i.certificate}:`) ? 'auth.issuer.certificate' : 'auth.issuer.key';
      out.push(problemAt(config, at, err.message));
    }
  }
  if (t) {
    try {
      await loadTrust({ rootcertbundle: t.rootcertbundle, jwks: t.jwks });
    } catch (err) {
      if (!(err instanceof TokenKeyError)) throw err;
      const at = t.jwks !== undefined && err.message.startsWith(`${t.jwks}:`) ? 'auth.token.jwks' : 'auth.token.rootcertbundle';
      out.push(problemAt(config, at, err.message));
    }
  }
  return out;
}

/** The lines of a readable htpasswd file that serve skips or accepts with a caveat, as serve logs them. */
async function htpasswdWarnings(path: string): Promise<string[]> {
  const parsed = parseHtpasswd(await readFile(path, 'utf8').catch(() => ''), path);
  return [
    ...parsed.problems.map((p) => `${path}:${p.line}: ${p.message}; line skipped`),
    ...parsed.warnings.map((w) => `${path}:${w.line}: ${w.message}`),
  ];
}

/** Why the htpasswd file cannot be used (as HtpasswdFile.load at start would fail), or undefined. */
export async function htpasswdProblem(path: string): Promise<string | undefined> {
  try {
    (await HtpasswdFile.load(path, { log: silentLogger() })).close();
    return undefined;
  } catch (err) {
    if (err instanceof HtpasswdError) {
      return `${path}: not a valid htpasswd file: ${err.problems.map((p) => `line ${p.line}: ${p.message}`).join('; ')}`;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return `${path}: ${await explainDenied(path, { want: 'read' })}`;
    return `${path}: ${fsReason(err, 'an htpasswd file')}`;
  }
}

/** Distribution's layout under a storage root (paths.ts): what a registry:2 volume has and berth writes into. */
const LAYOUT_DIRS = ['docker', 'docker/registry', 'docker/registry/v2', 'docker/registry/v2/blobs',
  'docker/registry/v2/blobs/sha256', 'docker/registry/v2/repositories'];
/** Entries sampled below blobs/sha256 and repositories (a volume chowned half-way); never a full walk. */
const SAMPLED = 8;

/** Why the storage root cannot be used: not a directory, or (when `write`) not writable or not creatable. */
export async function storageRootProblem(root: string, write: boolean): Promise<string | undefined> {
  let dir = root;
  for (;;) {
    try {
      const st = await stat(dir);
      if (!st.isDirectory()) {
        return dir === root ? `${root}: not a directory` : `${root}: cannot be created: ${dir} is not a directory`;
      }
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') return `${root}: ${await explainDenied(root, { want: write ? 'write' : 'read', chownPath: root })}`;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return `${root}: ${fsReason(err, 'a directory')}`;
      if (dirname(dir) === dir) return `${root}: cannot be created`;
      dir = dirname(dir);
    }
  }
  const want = write ? 'write' : 'read';
  if (dir !== root) {
    // To be created below `dir` (only when writable; a read-only registry without its root serves nothing, as before).
    if (!write) return undefined;
    const code = await accessCode(dir, accessMode('write', true));
    return code === undefined ? undefined : `${root}: cannot be created: ${dir} ${await explainDenied(dir, { want, creating: root }, code)}`;
  }
  const code = await accessCode(root, accessMode(want, true));
  if (code !== undefined) return `${root}: ${await explainDenied(root, { want, chownPath: root }, code)}`;
  return layoutProblem(root, want);
}

/** A directory of Distribution's layout under `root` that berth cannot use (registry:2 wrote it as root). */
async function layoutProblem(root: string, want: 'read' | 'write'): Promise<string | undefined> {
  const dirs = LAYOUT_DIRS.map((d) => join(root, d));
  for (const parent of [join(root, 'docker/registry/v2/blobs/sha256'), join(root, 'docker/registry/v2/repositories')]) {
    const names = await readdir(parent).catch(() => [] as string[]);
    dirs.push(...names.sort().slice(0, SAMPLED).map((n) => join(parent, n)));
  }
  for (const d of dirs) {
    const st = await stat(d).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const code = await accessCode(d, accessMode(want, true));
    if (code !== undefined) return `${root}: ${d} ${await explainDenied(d, { want, chownPath: root }, code)}`;
  }
  return undefined;
}

function fsReason(err: unknown, wanted: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT': return 'file not found';
    case 'ENOTDIR': return 'file not found (a parent is not a directory)';
    case 'EISDIR': return `is a directory, expected ${wanted}`;
    case 'EACCES': case 'EPERM': return 'permission denied';
    default: return code ? `cannot read (${code})` : (err as Error).message;
  }
}
