// The referrers index (OCI 1.1): `_referrers/<alg>/<subject-hex>/<alg>/<hex>/link` per manifest whose
// `subject` is <subject>, maintained on manifest PUT/DELETE, and the image index the API returns.
// registry:2 neither writes nor reads it; entries whose manifest is gone are skipped when listing.
import type { OpOptions, StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { tryParseDigest, type Digest } from './digest.js';
import { deleteIfExists, isNotFound } from './driver-util.js';
import { ManifestUnknownError } from './errors.js';
import { parseManifestJson } from './manifest-validate.js';
import type { ReferrerDescriptor } from './repository.js';

export class ReferrersIndex {
  constructor(private readonly driver: StorageDriver, readonly name: string) {}

  async add(subject: Digest, referrer: Digest, o?: OpOptions): Promise<void> {
    await this.driver.putContent(pathFor({ kind: 'referrerLink', name: this.name, subject, digest: referrer }),
      Buffer.from(referrer.text), o);
  }

  async remove(subject: Digest, referrer: Digest, o?: OpOptions): Promise<void> {
    await deleteIfExists(this.driver, pathFor({ kind: 'referrerLink', name: this.name, subject, digest: referrer }), o);
  }

  /** Digests recorded as referrers of subject, in storage order; [] when none. */
  async list(subject: Digest, o?: OpOptions): Promise<Digest[]> {
    const out: Digest[] = [];
    for (const algDir of await this.listOrEmpty(pathFor({ kind: 'referrersRoot', name: this.name, subject }), o)) {
      const alg = algDir.slice(algDir.lastIndexOf('/') + 1);
      for (const hexDir of await this.listOrEmpty(algDir, o)) {
        const d = tryParseDigest(`${alg}:${hexDir.slice(hexDir.lastIndexOf('/') + 1)}`);
        if (d) out.push(d);
      }
    }
    return out;
  }

  private async listOrEmpty(path: string, o?: OpOptions): Promise<string[]> {
    try {
      return await this.driver.list(path, o);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }
}

/**
 * Descriptors of every live referrer of subject, optionally only those
 * whose artifactType equals `artifactType`. `load` throws ManifestUnknownError for removed manifests.
 */
export async function listReferrers(
  index: ReferrersIndex, subject: Digest, artifactType: string | undefined,
  load: (d: Digest) => Promise<{ bytes: Buffer; mediaType: string }>, o?: OpOptions,
): Promise<ReferrerDescriptor[]> {
  const manifests: ReferrerDescriptor[] = [];
  for (const d of await index.list(subject, o)) {
    let m: { bytes: Buffer; mediaType: string };
    try {
      m = await load(d);
    } catch (err) {
      if (err instanceof ManifestUnknownError) continue;
      throw err;
    }
    const desc = describe(d, m.bytes, m.mediaType);
    if (artifactType !== undefined && desc.artifactType !== artifactType) continue;
    manifests.push(desc);
  }
  return manifests;
}

function describe(d: Digest, bytes: Buffer, mediaType: string): ReferrerDescriptor {
  const json = parseManifestJson(bytes);
  const desc: ReferrerDescriptor = { mediaType, digest: d.text, size: bytes.length };
  const config = json.config as { mediaType?: unknown } | undefined;
  const at = typeof json.artifactType === 'string' ? json.artifactType
    : typeof config?.mediaType === 'string' ? config.mediaType : undefined;
  if (at !== undefined) desc.artifactType = at;
  if (json.annotations && typeof json.annotations === 'object') desc.annotations = json.annotations as Record<string, string>;
  return desc;
}
