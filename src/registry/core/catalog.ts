// The repository catalog: names of the directories under repositories/ that hold a `_manifests`
// directory (distribution's rule), in lexical order, one page at a time. It lists directories lazily
// and stops as soon as the page is full; it must not load the whole tree or know HTTP.
import { PathNotFoundError, type OpOptions, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';

/** The directory whose presence makes a repository (`_manifests`), as paths.ts names it. */
const MANIFESTS = ((p) => p.slice(p.lastIndexOf('/') + 1))(pathFor({ kind: 'manifestsRoot', name: 'x' }));

/**
 * Repository names strictly after `last`, at most `n`, in lexical (code unit) order — the order of
 * `Array.prototype.sort`, which is what the spec's "lexical order" means and what pagination with
 * `last` needs. `more` is true when another name exists after the last one returned.
 *
 * A repository may contain other repositories (`library` and `library/ubuntu`); directories whose
 * name starts with `_` (`_manifests`, `_layers`, `_uploads`, ...) are never descended into, so the
 * cost is one list() per directory that is a repository or leads to one, up to the page's end.
 * Note: registry:2 orders component-wise ("a/b" before "a-b"); names differing only there come out
 * in a different order than registry:2 would give, which no client relies on.
 */
export async function listRepositories(
  driver: StorageDriver, { n, last }: { n: number; last?: string }, o?: OpOptions,
): Promise<{ names: string[]; more: boolean }> {
  const names: string[] = [];
  let more = false;
  if (!Number.isFinite(n) || n < 0) n = 0;
  const root = await listNames(driver, '', o);
  if (root === null) return { names, more };
  for await (const name of repositoriesBelow(driver, '', root, last || undefined, o)) {
    if (names.length >= n) { more = true; break; }
    names.push(name);
  }
  return { names, more };
}

/** Child directory names of repository dir `name` ('' = the repositories root); null when missing. */
async function listNames(driver: StorageDriver, name: string, o?: OpOptions): Promise<string[] | null> {
  const dir = name === '' ? pathFor({ kind: 'repositoriesRoot' }) : pathFor({ kind: 'repository', name });
  try {
    return (await driver.list(dir, o)).map((p) => p.slice(p.lastIndexOf('/') + 1));
  } catch (err) {
    if (err instanceof PathNotFoundError) return null;   // gone meanwhile, or a stray file
    throw err;
  }
}

/**
 * Yields, in lexical order, every repository name below `parent` (whose children are `children`)
 * that is greater than `last`. Within one directory the keys are each child's own name `c` and its
 * subtree `c/…`; the subtree's names are contiguous in lexical order, so sorting the keys `c` and
 * `c/` and recursing in that order yields a globally sorted stream.
 */
async function* repositoriesBelow(
  driver: StorageDriver, parent: string, children: string[], last: string | undefined, o?: OpOptions,
): AsyncGenerator<string> {
  const items: { key: string; name: string; sub: boolean }[] = [];
  for (const c of children) {
    if (c.startsWith('_')) continue;
    const name = parent === '' ? c : `${parent}/${c}`;
    items.push({ key: name, name, sub: false }, { key: `${name}/`, name, sub: true });
  }
  items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const listed = new Map<string, string[] | null>();   // listings kept from a name's own item to its subtree's
  const listing = async (name: string) => {
    if (!listed.has(name)) listed.set(name, await listNames(driver, name, o));
    return listed.get(name)!;
  };
  for (const it of items) {
    if (!it.sub) {
      if (last !== undefined && it.name <= last) continue;
      if ((await listing(it.name))?.includes(MANIFESTS)) yield it.name;
      continue;
    }
    // Every name in the subtree starts with key ("name/"); skip it when all of them are <= last.
    if (last !== undefined && last >= it.key && !last.startsWith(it.key)) { listed.delete(it.name); continue; }
    const sub = await listing(it.name);
    listed.delete(it.name);
    if (sub) yield* repositoriesBelow(driver, it.name, sub, last, o);
  }
}
