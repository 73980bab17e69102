// Garbage collection (Distribution's `registry garbage-collect`, made safe for multi-arch images):
// mark every blob a kept manifest of any repository references, then sweep blob data nobody marked.
// With deleteUntagged, a repository keeps only manifests reachable from its tags, recursively through
// index children and referrers (manifests whose `subject` is kept); the rest lose their revision link.
// Upload sessions nobody has written to for a while (dead: no request is writing them) go too, so the
// leftovers of failed uploads (a full disk) do not stay. It must not run under a live writer (callers
// check writer-lease.ts first) and knows nothing of HTTP.
import type { Logger } from '../../log/logger.js';
import type { OpOptions, StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { listRepositories } from './catalog.js';
import { tryParseDigest, type Digest } from './digest.js';
import { contentIfExists, deleteIfExists, isNotFound } from './driver-util.js';
import { parseManifestJson } from './manifest-validate.js';
import { TagStore } from './tag-store.js';
import { purgeUploads } from './upload-purger.js';

export interface GcOptions {
  dryRun: boolean;
  deleteUntagged: boolean;
  log: Logger;
  signal?: AbortSignal;
  /** Delete upload sessions whose newest modification is before this (absent: leave uploads alone). */
  uploadsModifiedBefore?: Date;
}

export interface GcResult {
  dryRun: boolean;
  repositories: number;
  /** Manifest revisions examined, over all repositories. */
  manifests: number;
  /** Distinct digests marked as in use (manifests, configs, layers). */
  markedBlobs: number;
  /** Blob digests whose data was deleted (would be, under dryRun), in storage order. */
  deletedBlobs: string[];
  /** Untagged manifests unlinked from their repository (deleteUntagged only). */
  deletedManifests: { repository: string; digest: string }[];
  /** `_layers` links removed because their blob data was swept. */
  deletedLayerLinks: number;
  /** Upload sessions deleted (would be, under dryRun) because nothing modified them since uploadsModifiedBefore. */
  deletedUploads: { repository: string; id: string }[];
}

/** What a stored manifest points at. Lenient: stored bytes may come from registry:2 (schema1 too). */
interface Refs { blobs: Digest[]; children: Digest[]; subject?: Digest }

export async function markAndSweep(driver: StorageDriver, opts: GcOptions): Promise<GcResult> {
  const o: OpOptions = { signal: opts.signal };
  const log = opts.log.child({ module: 'gc' });
  const result: GcResult = {
    dryRun: opts.dryRun, repositories: 0, manifests: 0, markedBlobs: 0, deletedBlobs: [], deletedManifests: [], deletedLayerLinks: 0,
    deletedUploads: [],
  };
  const marked = new Set<string>();
  const refsCache = new Map<string, Refs | null>();   // manifest bytes are global: parse each digest once
  const refsOf = async (d: Digest): Promise<Refs | null> => {
    if (!refsCache.has(d.text)) refsCache.set(d.text, await readRefs(driver, d, o));
    return refsCache.get(d.text)!;
  };

  // Mark (and, with deleteUntagged, unlink what is unreachable) one repository at a time.
  for await (const name of allRepositories(driver, o)) {
    result.repositories += 1;
    const revisions = await listRevisions(driver, name, o);
    result.manifests += revisions.length;
    const roots: Digest[] = [];
    const tags = new TagStore(driver, name);
    for (const tag of await tags.list(o)) {
      const link = await contentIfExists(driver, pathFor({ kind: 'manifestTagCurrent', name, tag }), o);
      const d = link && tryParseDigest(link.toString('utf8').trim());
      if (d) roots.push(d);
    }
    if (!opts.deleteUntagged) roots.push(...revisions);
    // Referrers are scoped to the repository: subject digest → revisions naming it.
    const referrers = new Map<string, Digest[]>();
    for (const r of revisions) {
      const s = (await refsOf(r))?.subject;
      if (s) referrers.set(s.text, [...(referrers.get(s.text) ?? []), r]);
    }
    const kept = new Set<string>();
    const queue = [...roots];
    while (queue.length) {
      const d = queue.pop()!;
      if (kept.has(d.text)) continue;
      kept.add(d.text);
      marked.add(d.text);
      const refs = await refsOf(d);
      for (const b of refs?.blobs ?? []) marked.add(b.text);
      queue.push(...(refs?.children ?? []), ...(referrers.get(d.text) ?? []));
    }
    for (const d of revisions) {
      if (kept.has(d.text)) continue;
      result.deletedManifests.push({ repository: name, digest: d.text });
      log.info({ repository: name, digest: d.text, dryRun: opts.dryRun }, 'untagged manifest eligible for deletion');
      if (opts.dryRun) continue;
      const subject = (await refsOf(d))?.subject;
      if (subject) await deleteIfExists(driver, pathFor({ kind: 'referrerLink', name, subject, digest: d }), o);
      await deleteIfExists(driver, pathFor({ kind: 'manifestRevisionDir', name, digest: d }), o);
      await deleteIfExists(driver, pathFor({ kind: 'layerLink', name, digest: d }), o);
    }
  }
  result.markedBlobs = marked.size;

  // Sweep: blob data no kept manifest references.
  const swept = new Set<string>();
  for await (const d of allBlobs(driver, o)) {
    if (marked.has(d.text)) continue;
    swept.add(d.text);
    result.deletedBlobs.push(d.text);
    log.info({ digest: d.text, dryRun: opts.dryRun }, 'blob eligible for deletion');
    if (!opts.dryRun) await deleteIfExists(driver, pathFor({ kind: 'blobDir', digest: d }), o);
  }

  // `_layers` links to swept data would make a later lookup find a link without bytes: remove them.
  if (swept.size && !opts.dryRun) {
    for await (const name of directoriesWithLayers(driver, '', o)) {
      for (const d of await digestDirs(driver, pathFor({ kind: 'layersRoot', name }), o)) {
        if (!swept.has(d.text)) continue;
        if (await deleteIfExists(driver, pathFor({ kind: 'layerLink', name, digest: d }), o)) result.deletedLayerLinks += 1;
      }
    }
  }

  // Dead upload sessions: a failed upload's leftovers (a chunked session the client gave up on, a disk that
  // filled up mid-chunk). Their data is never a blob yet, so this is independent of mark and sweep.
  if (opts.uploadsModifiedBefore) {
    const r = await purgeUploads(driver, { olderThan: opts.uploadsModifiedBefore, by: 'modified', dryRun: opts.dryRun, log, signal: opts.signal });
    result.deletedUploads = r.sessions;
  }
  log.info({
    dryRun: opts.dryRun, repositories: result.repositories, manifests: result.manifests, markedBlobs: result.markedBlobs,
    deletedBlobs: result.deletedBlobs.length, deletedManifests: result.deletedManifests.length, deletedUploads: result.deletedUploads.length,
  }, 'garbage collection finished');
  return result;
}

async function* allRepositories(driver: StorageDriver, o: OpOptions): AsyncGenerator<string> {
  let last: string | undefined;
  for (;;) {
    const page = await listRepositories(driver, { n: 1000, last }, o);
    yield* page.names;
    if (!page.more || page.names.length === 0) return;
    last = page.names[page.names.length - 1];
  }
}

/** Repository directories holding `_layers` (also those without `_manifests`: only blobs pushed). */
async function* directoriesWithLayers(driver: StorageDriver, name: string, o: OpOptions): AsyncGenerator<string> {
  const dir = name === '' ? pathFor({ kind: 'repositoriesRoot' }) : pathFor({ kind: 'repository', name });
  const layers = base(pathFor({ kind: 'layersRoot', name: 'x' }));
  const children = (await listOrEmpty(driver, dir, o)).map(base);
  if (name !== '' && children.includes(layers)) yield name;
  for (const c of children) if (!c.startsWith('_')) yield* directoriesWithLayers(driver, name === '' ? c : `${name}/${c}`, o);
}

/** Revisions whose link file exists (a directory without a link is not a revision). */
async function listRevisions(driver: StorageDriver, name: string, o: OpOptions): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const d of await digestDirs(driver, pathFor({ kind: 'manifestRevisionsRoot', name }), o)) {
    const link = await contentIfExists(driver, pathFor({ kind: 'manifestRevisionLink', name, digest: d }), o);
    if (link && tryParseDigest(link.toString('utf8').trim())) out.push(d);
  }
  return out;
}

/** Digests of `<root>/<alg>/<hex>` directories; [] when root is missing. Odd names are ignored. */
async function digestDirs(driver: StorageDriver, root: string, o: OpOptions): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const algDir of await listOrEmpty(driver, root, o)) {
    const alg = base(algDir);
    for (const hexDir of await listOrEmpty(driver, algDir, o)) {
      const d = tryParseDigest(`${alg}:${base(hexDir)}`);
      if (d) out.push(d);
    }
  }
  return out;
}

/** Every `blobs/<alg>/<xx>/<hex>` directory, as a digest; names that are not digests are left alone. */
async function* allBlobs(driver: StorageDriver, o: OpOptions): AsyncGenerator<Digest> {
  for (const algDir of await listOrEmpty(driver, pathFor({ kind: 'blobsRoot' }), o)) {
    const alg = base(algDir);
    for (const prefixDir of await listOrEmpty(driver, algDir, o)) {
      for (const hexDir of await listOrEmpty(driver, prefixDir, o)) {
        const d = tryParseDigest(`${alg}:${base(hexDir)}`);
        if (d && d.hex.startsWith(base(prefixDir))) yield d;
      }
    }
  }
}

/** References in stored manifest bytes; null when the data is missing or not a JSON manifest. */
async function readRefs(driver: StorageDriver, d: Digest, o: OpOptions): Promise<Refs | null> {
  const bytes = await contentIfExists(driver, pathFor({ kind: 'blobData', digest: d }), o);
  if (!bytes) return null;
  let json: Record<string, unknown>;
  try {
    json = parseManifestJson(bytes);
  } catch {
    return null;
  }
  const digestIn = (v: unknown, key = 'digest'): Digest | undefined => {
    const s = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
    return typeof s === 'string' ? tryParseDigest(s) : undefined;
  };
  const list = (v: unknown, key = 'digest'): Digest[] =>
    (Array.isArray(v) ? v : []).map((x) => digestIn(x, key)).filter((x): x is Digest => x !== undefined);
  const blobs = [...list(json.layers), ...list(json.fsLayers, 'blobSum')];   // fsLayers: schema1 (registry:2 data)
  const config = digestIn(json.config);
  if (config) blobs.push(config);
  return { blobs, children: list(json.manifests), subject: digestIn(json.subject) };
}

async function listOrEmpty(driver: StorageDriver, path: string, o: OpOptions): Promise<string[]> {
  try {
    return await driver.list(path, o);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
