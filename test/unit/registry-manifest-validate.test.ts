// Table tests for manifest validation: media type negotiation between Content-Type and body,
// required fields per kind, descriptor checks, schema1 rejection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManifestInvalidError } from '../../src/registry/core/errors.js';
import { MT, storedMediaType, validateManifest } from '../../src/registry/core/manifest-validate.js';

const D = `sha256:${'b'.repeat(64)}`;
const desc = (mediaType = 'application/vnd.oci.image.layer.v1.tar') => ({ mediaType, digest: D, size: 3 });
const image = (extra: Record<string, unknown> = {}) => ({ schemaVersion: 2, config: desc('application/vnd.oci.image.config.v1+json'), layers: [desc()], ...extra });
const index = (extra: Record<string, unknown> = {}) => ({ schemaVersion: 2, manifests: [desc(MT.ociManifest)], ...extra });
const buf = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o));

test('accepts the four manifest types and reports kind and media type', () => {
  const rows: [unknown, string | undefined, string, 'image' | 'index'][] = [
    [image({ mediaType: MT.ociManifest }), MT.ociManifest, MT.ociManifest, 'image'],
    [image({ mediaType: MT.dockerManifest }), MT.dockerManifest, MT.dockerManifest, 'image'],
    [index({ mediaType: MT.dockerList }), MT.dockerList, MT.dockerList, 'index'],
    [index({ mediaType: MT.ociIndex }), `${MT.ociIndex}; charset=utf-8`, MT.ociIndex, 'index'],
    [image(), MT.ociManifest, MT.ociManifest, 'image'],          // OCI without mediaType field
    [index(), MT.ociIndex, MT.ociIndex, 'index'],
    [image(), undefined, MT.ociManifest, 'image'],               // inferred
    [index(), 'application/json', MT.ociIndex, 'index'],
    [image({ mediaType: MT.ociManifest }), undefined, MT.ociManifest, 'image'],
    [image({ layers: [] }), MT.ociManifest, MT.ociManifest, 'image'],
  ];
  for (const [body, ct, mt, kind] of rows) {
    const m = validateManifest(buf(body), ct);
    assert.equal(m.mediaType, mt);
    assert.equal(m.kind, kind);
  }
});

test('keeps subject, artifactType, annotations and foreign-layer urls', () => {
  const m = validateManifest(buf(image({
    mediaType: MT.ociManifest, artifactType: 'application/x-sig', annotations: { a: 'b' }, subject: desc(MT.ociManifest),
    layers: [{ ...desc('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'), urls: ['https://example.com/x'] }],
  })), MT.ociManifest);
  assert.equal(m.subject?.digest.text, D);
  assert.equal(m.artifactType, 'application/x-sig');
  assert.deepEqual(m.annotations, { a: 'b' });
  assert.deepEqual(m.layers[0].urls, ['https://example.com/x']);
});

test('rejects invalid manifests with MANIFEST_INVALID reasons', () => {
  const rows: [unknown, string | undefined, RegExp][] = [
    ['not json', MT.ociManifest, /JSON/],
    ['[1]', MT.ociManifest, /object/],
    [image({ schemaVersion: 1 }), MT.ociManifest, /schema1/],
    [image(), MT.schema1Signed, /schema1/],
    [image({ mediaType: MT.schema1 }), undefined, /schema1/],
    [image({ schemaVersion: 3 }), MT.ociManifest, /schemaVersion/],
    [{ ...image(), schemaVersion: undefined }, MT.ociManifest, /schemaVersion/],
    [image({ mediaType: MT.ociManifest }), MT.dockerManifest, /does not match/],
    [image({ mediaType: 'application/x-foo' }), 'application/x-foo', /unsupported/],
    [image(), MT.dockerManifest, /mediaType is required/],
    [image({ config: undefined }), MT.ociManifest, /config/],
    [image({ layers: undefined }), MT.ociManifest, /layers/],
    [index({ manifests: {} }), MT.ociIndex, /manifests/],
    [image({ mediaType: MT.ociIndex }), MT.ociIndex, /manifests/],
    [image({ layers: [{ ...desc(), digest: 'sha256:xyz' }] }), MT.ociManifest, /layers\[0\]\.digest/],
    [image({ layers: [{ ...desc(), size: -1 }] }), MT.ociManifest, /size/],
    [image({ layers: [{ ...desc(), size: 1.5 }] }), MT.ociManifest, /size/],
    [image({ layers: [{ ...desc(), mediaType: undefined }] }), MT.ociManifest, /mediaType/],
    [image({ subject: 'x' }), MT.ociManifest, /subject/],
    [image({ annotations: { a: 1 } }), MT.ociManifest, /annotations/],
    [image({ manifests: [] }), MT.ociManifest, /ambiguous/],
    [image({ mediaType: 7 }), undefined, /mediaType/],
  ];
  for (const [body, ct, re] of rows) {
    assert.throws(() => validateManifest(buf(body), ct), (e: unknown) => e instanceof ManifestInvalidError && re.test(e.message),
      `${JSON.stringify(body).slice(0, 80)} / ${ct}`);
  }
});

test('stored media type inference matches Distribution', () => {
  assert.equal(storedMediaType({ mediaType: MT.dockerList }), MT.dockerList);
  assert.equal(storedMediaType({ manifests: [] }), MT.ociIndex);
  assert.equal(storedMediaType({ config: {} }), MT.ociManifest);
});
