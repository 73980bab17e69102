// Explains a permission failure of the running user on a path in one line, for preflight's problems: who berth
// runs as, who owns the path (or the directory on the way that cannot be entered) and its mode, and the fix
// (`chown [-R] UID:GID PATH`, or running berth as the owner: `docker run --user OWNER`). Reads metadata only.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export type Want = 'read' | 'write';

/** R_OK (+X_OK for directories), plus W_OK for 'write': what berth needs of the path. */
export function accessMode(want: Want, isDir: boolean): number {
  return constants.R_OK | (isDir ? constants.X_OK : 0) | (want === 'write' ? constants.W_OK : 0);
}

/** The errno code of access(path, mode), or undefined when allowed. */
export async function accessCode(path: string, mode: number): Promise<string | undefined> {
  try {
    await access(path, mode);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'EACCES';
  }
}

/** The nearest ancestor of `path` that this process cannot enter (search permission), if any. */
export async function blockingAncestor(path: string): Promise<string | undefined> {
  const chain: string[] = [];
  for (let d = dirname(path); ; d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of chain) if (await accessCode(d, constants.X_OK) === 'EACCES') return d;
  return undefined;
}

export interface DeniedOptions {
  want: Want;
  /** What to chown in the fix (default: the path, or the blocking directory). A storage root names itself. */
  chownPath?: string;
  /** The path is the existing parent of this directory, which is to be created: the fix creates it (chowning
   *  the parent, such as /var/lib, would be wrong). */
  creating?: string;
}

/**
 * One line after "PATH: ": why this process may not read (or write) `path`, e.g. "not writable (berth runs as uid
 * 1000, gid 1000; /var/lib/registry is owned by uid 0, gid 0, mode 0755); fix: chown -R 1000:1000 /var/lib/registry,
 * or run berth as uid 0 (docker run --user 0)". The caller has already seen EACCES/EPERM (or EROFS).
 */
export async function explainDenied(path: string, o: DeniedOptions, code = 'EACCES'): Promise<string> {
  const problem = o.want === 'write' ? 'not writable' : 'permission denied';
  if (code === 'EROFS') {
    return `${problem}: read-only filesystem (mount it read-write, or set registry.storage.maintenance.readonly.enabled: true)`;
  }
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  if (uid === undefined || gid === undefined) return problem;   // no POSIX ids (Windows)
  const block = await blockingAncestor(path);
  const target = block ?? path;
  const st = await stat(target).catch(() => undefined);
  const what = block ? `${problem}: cannot enter ${block}` : problem;
  const who = `berth runs as uid ${uid}, gid ${gid}`;
  if (!st) return `${what} (${who})`;
  const owner = `${target} is owned by uid ${st.uid}, gid ${st.gid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`;
  if (uid === 0) return `${what} (${who}; ${owner}; refused even to root: a read-only or special filesystem?)`;
  const w = o.want === 'write' && !block ? 'w' : '';
  if (st.uid === uid) {
    // Already ours: the mode bits are what is missing (a storage root: the whole tree).
    return o.chownPath
      ? `${what} (${who}; ${owner}); fix: chmod -R u+r${w}X ${o.chownPath}`
      : `${what} (${who}; ${owner}); fix: chmod u+r${w}${st.isDirectory() ? 'x' : ''} ${target}`;
  }
  if (o.creating && !block) {
    return `${what} (${who}; ${owner}); fix: mkdir -p ${o.creating} && chown ${uid}:${gid} ${o.creating} (as root), or run berth as uid ${st.uid} (docker run --user ${st.uid})`;
  }
  const fixPath = o.chownPath ?? target;
  const recursive = fixPath !== target || st.isDirectory() ? '-R ' : '';
  return `${what} (${who}; ${owner}); fix: chown ${recursive}${uid}:${gid} ${fixPath}, or run berth as uid ${st.uid} (docker run --user ${st.uid})`;
}
