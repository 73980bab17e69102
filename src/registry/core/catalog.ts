// The repository listings: listCatalog (the _catalog API: Distribution 2.8.2's walk, so berth and registry:2
// list the same names in the same order and pages on the same data) and listRepositories (directories holding
// `_manifests` in plain lexical order, for gc's complete paging). Both list directories lazily and stop as soon
// as the page is full; they must not load the whole tree or know HTTP.
import { PathNotFoundError, type OpOptions, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';

/** The directory whose presence makes a repository (`_manifests`), as paths.ts names it. */
const MANIFESTS = ((p) => p.slice(p.lastIndexOf('/') + 1))(pathFor({ kind: 'manifestsRoot', name: 'x' }));
/** The directory Distribution's catalog finds repositories by (`_layers`). */
const LAYERS = ((p) => p.slice(p.lastIndexOf('/') + 1))(pathFor({ kind: 'layersRoot', name: 'x' }));

/**
 * The _catalog page after `last`: at most `n` names, and whether registry:2 would send a Link. Distribution
 * 2.8.2's Repositories, step for step: a depth-first walk of repositories/ with each directory's entries in
 * byte order; an entry `_layers` yields its parent (so a repository holding only blobs is listed, one holding
 * only `_manifests` is not), other `_` entries are skipped; a name is kept when it sorts after `last`
 * component-wise ('/' before every other byte: "a/b" < "a-b"). The walk's order is not quite that order: a
 * repository comes at its `_layers` entry, after child repositories whose names sort before '_' ("a/0x",
 * "A", then "a"). And registry:2 only notices a full page at the next entry that is not a `_` one: when
 * another repository is found first, it walks on to the end and sends no Link (`more` false). Both quirks are
 * kept, so a client paging through berth sees exactly the pages registry:2 gives. Subtrees whose every name
 * is <= `last` are not listed (registry:2 walks them, finding nothing); the walk stops once the page is decided.
 */
export async function listCatalog(
  driver: StorageDriver, { n, last, filter }: { n: number; last?: string; filter?: (name: string) => boolean }, o?: OpOptions,
): Promise<{ names: string[]; more: boolean }> {
  const names: string[] = [];
  if (!Number.isFinite(n) || n <= 0) return { names, more: false };
  const after = last ? componentKey(last) : undefined;
  for await (const ev of walkLayers(driver, '', after, o)) {
    if (ev === ENTRY) {
      if (names.length === n && !filter) return { names, more: true };   // registry:2's check, on its next walk callback
    } else if (!filter || filter(ev)) {   // a filtered-out name is as if absent (only what the caller may see counts)
      // Filtered (access rules): a Link only when another name the caller may see exists, so no page is empty.
      if (filter && names.length === n) return { names, more: true };
      names.push(ev);
      if (names.length > n) return { names: names.slice(0, n), more: false };   // it never sees the page full
    }
  }
  return { names, more: false };
}

/** A walk callback for an entry that is not a `_` one (registry:2 checks for a full page there). */
const ENTRY = Symbol('entry');

/** registry:2's walk as events: a repository name at each `_layers` (after `last`), ENTRY at every other
 *  non-`_` entry (directory or file), in walk order. */
async function* walkLayers(
  driver: StorageDriver, parent: string, after: Buffer | undefined, o?: OpOptions,
): AsyncGenerator<string | typeof ENTRY> {
  const children = await listNames(driver, parent, o);
  if (children === null) return;   // missing, or a file
  children.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));   // storage names are ASCII: code units = bytes
  for (const c of children) {
    if (c === LAYERS) {
      if (parent !== '' && (after === undefined || Buffer.compare(after, componentKey(parent)) < 0)) yield parent;
      continue;
    }
    if (c.startsWith('_')) continue;
    yield ENTRY;
    const name = parent === '' ? c : `${parent}/${c}`;
    if (after !== undefined) {
      // Every name below `name` starts with key(name) + NUL; skip the subtree when `after` is past all of them
      // (no repository can have been found before it either, so registry:2's checks there see an empty page).
      const prefix = Buffer.concat([componentKey(name), Buffer.from([0])]);
      if (Buffer.compare(after, prefix) >= 0 && !after.subarray(0, prefix.length).equals(prefix)) continue;
    }
    yield* walkLayers(driver, name, after, o);
  }
}

/** Distribution's lessPath key: the name's bytes with '/' as NUL, so a separator sorts before anything else. */
function componentKey(name: string): Buffer {
  return Buffer.from(name.replaceAll('/', '\0'), 'utf8');
}

/**
 * Repository names (directories holding `_manifests`) strictly after `last`, at most `n`, in lexical (code
 * unit) order, so paging with `last` never misses one (gc's walk; the API lists with listCatalog).
 * `more` is true when another name exists after the last one returned.
 *
 * A repository may contain other repositories (`library` and `library/ubuntu`); directories whose
 * name starts with `_` (`_manifests`, `_layers`, `_uploads`, ...) are never descended into, so the
 * cost is one list() per directory that is a repository or leads to one, up to the page's end.
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
