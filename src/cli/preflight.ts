// What `serve` would fail on outside the config text, checked before it starts and by `check-config`
// with the same messages: the htpasswd file (exists, readable; lines serve would skip are warnings) and the
// storage root (a directory, or creatable, and writable unless read-only). Each problem is named by its config key at the key's
// line:col (problemAt), so it prints like a load error. Reads only; creates nothing.
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HtpasswdError, HtpasswdFile, parseHtpasswd } from '../auth/htpasswd.js';
import type { ConfigProblem } from '../config/config-error.js';
import { problemAt } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { silentLogger } from '../log/logger.js';
import { dataDirectory } from '../registry/storage/factory.js';

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
  if (config.upstreams.v2 === 'embedded') {
    const { driver, parameters } = config.registry.storage;
    const root = dataDirectory(driver, parameters);
    const readonly = config.registry.storage.maintenance.readonly.enabled;
    const why = root === undefined ? undefined : await storageRootProblem(root, !readonly);
    if (why) problems.push(problemAt(config, `registry.storage.${driver}.rootdirectory`, why));
  }
  return { problems, warnings };
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
    return `${path}: ${fsReason(err, 'an htpasswd file')}`;
  }
}

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
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return `${root}: ${fsReason(err, 'a directory')}`;
      if (dirname(dir) === dir) return `${root}: cannot be created`;
      dir = dirname(dir);
    }
  }
  if (!write) return undefined;
  try {
    await access(dir, constants.W_OK | constants.X_OK);
    return undefined;
  } catch {
    return dir === root ? `${root}: not writable` : `${root}: cannot be created: ${dir} is not writable`;
  }
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
