// auth.access.groupsfile: a YAML file of group → [user, …] (the same shape as auth.access.groups), read at start
// (and by check-config and `berth access check`). Only reads and checks the file; merging and rules are rules.ts's.
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';

const GROUP = /^[A-Za-z0-9._-]+$/;
const USER = /^[^\s:\x00-\x1f\x7f@][^\s:\x00-\x1f\x7f]*$/;

/** Why the groups file cannot be used: unreadable, not YAML, not a mapping of group → list of user names. */
export class GroupsFileError extends Error {
  readonly code = 'BERTH_GROUPS_FILE';
  constructor(readonly file: string, readonly reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'GroupsFileError';
  }
}

/** The groups of `file`; GroupsFileError naming the first problem (with its line). */
export async function loadGroupsFile(file: string): Promise<Record<string, string[]>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GroupsFileError(file, code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, expected a groups file'
      : code === 'EACCES' ? 'permission denied' : `cannot read (${code ?? (err as Error).message})`);
  }
  return parseGroups(text, file);
}

/** Parses groups-file text (exported for tests). */
export function parseGroups(text: string, file: string): Record<string, string[]> {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  const lineOf = (pos: number | undefined) => (pos === undefined ? 0 : text.slice(0, pos).split('\n').length);
  const first = doc.errors[0];
  if (first) throw new GroupsFileError(file, `line ${lineOf(first.pos[0])}: ${first.code === 'DUPLICATE_KEY' ? 'a group given twice' : 'not valid YAML'}`);
  const out: Record<string, string[]> = {};
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return out;   // an empty file: no groups
  if (!isMap(root)) throw new GroupsFileError(file, 'expected a mapping of group name to a list of user names');
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    const at = `line ${lineOf((pair.key as { range?: number[] } | null)?.range?.[0])}`;
    if (!GROUP.test(key)) throw new GroupsFileError(file, `${at}: group name "${key}": expected letters, digits, ".", "_", "-"`);
    const v = pair.value;
    if (v === null || (isScalar(v) && v.value === null)) { out[key] = []; continue; }
    if (!isSeq(v)) throw new GroupsFileError(file, `${at}: group ${key}: expected a list of user names`);
    out[key] = v.items.map((item) => {
      const name = isScalar(item) && typeof item.value === 'string' ? item.value : undefined;
      if (name === undefined || !USER.test(name) || name === 'anonymous' || name === '*') {
        throw new GroupsFileError(file, `${at}: group ${key}: expected user names (not *, anonymous or @group), found ${JSON.stringify(isScalar(item) ? item.value : '?')}`);
      }
      return name;
    });
  }
  return out;
}
