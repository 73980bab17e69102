// The ONLY module that knows the on-disk layout. It is Distribution's (registry:2) layout exactly,
// so berth and registry:2 can share a /var/lib/registry. Nothing here does I/O.
//
// /docker/registry/v2/
//   blobs/<alg>/<hex[0:2]>/<hex>/data                                  blob bytes (content-addressed)
//   repositories/<name>/
//     _layers/<alg>/<hex>/link                                         "<alg>:<hex>": blob linked into repo
//     _manifests/revisions/<alg>/<hex>/link                            manifest revision linked into repo
//     _manifests/tags/<tag>/current/link                               tag → manifest digest
//     _manifests/tags/<tag>/index/<alg>/<hex>/link                     every digest the tag has pointed at
//     _uploads/<id>/data                                               upload bytes so far
//     _uploads/<id>/startedat                                          RFC 3339 start time
//     _uploads/<id>/hashstates/<alg>/<offset>                          (registry:2 only; berth re-hashes)
//     _referrers/<alg>/<subject-hex>/<alg>/<hex>/link                  berth only: manifests whose subject
//                                                                     is <subject>; registry:2 ignores it
//   _berth/writer/<host>-<pid>                                       berth only: lease of a serving (writing)
//                                                                     process, heartbeat inside; gc checks it
// Repository names contain '/', which become nested directories.

export const ROOT = '/docker/registry/v2';

export type Digest = { algorithm: string; hex: string };

export type PathSpec =
  | { kind: 'blobsRoot' }
  | { kind: 'blobData'; digest: Digest }
  | { kind: 'blobDir'; digest: Digest }
  | { kind: 'repositoriesRoot' }
  | { kind: 'repository'; name: string }
  | { kind: 'layerLink'; name: string; digest: Digest }
  | { kind: 'layersRoot'; name: string }
  | { kind: 'manifestsRoot'; name: string }   // its presence is what makes a directory a repository
  | { kind: 'manifestRevisionsRoot'; name: string }
  | { kind: 'manifestRevisionLink'; name: string; digest: Digest }
  | { kind: 'manifestRevisionDir'; name: string; digest: Digest }
  | { kind: 'manifestTagsRoot'; name: string }
  | { kind: 'manifestTag'; name: string; tag: string }
  | { kind: 'manifestTagCurrent'; name: string; tag: string }
  | { kind: 'manifestTagIndexEntry'; name: string; tag: string; digest: Digest }
  | { kind: 'uploadsRoot'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'uploadData'; name: string; id: string }
  | { kind: 'uploadStartedAt'; name: string; id: string }
  | { kind: 'referrersRoot'; name: string; subject: Digest }
  | { kind: 'referrerLink'; name: string; subject: Digest; digest: Digest }
  | { kind: 'writerLeasesRoot' }
  | { kind: 'writerLease'; holder: string };   // holder: [A-Za-z0-9._-]+

export function pathFor(s: PathSpec): string {
  const repo = (name: string) => `${ROOT}/repositories/${name}`;
  switch (s.kind) {
    case 'blobsRoot': return `${ROOT}/blobs`;
    case 'blobDir': return `${ROOT}/blobs/${s.digest.algorithm}/${s.digest.hex.slice(0, 2)}/${s.digest.hex}`;
    case 'blobData': return `${pathFor({ kind: 'blobDir', digest: s.digest })}/data`;
    case 'repositoriesRoot': return `${ROOT}/repositories`;
    case 'repository': return repo(s.name);
    case 'layersRoot': return `${repo(s.name)}/_layers`;
    case 'layerLink': return `${repo(s.name)}/_layers/${s.digest.algorithm}/${s.digest.hex}/link`;
    case 'manifestsRoot': return `${repo(s.name)}/_manifests`;
    case 'manifestRevisionsRoot': return `${repo(s.name)}/_manifests/revisions`;
    case 'manifestRevisionDir': return `${repo(s.name)}/_manifests/revisions/${s.digest.algorithm}/${s.digest.hex}`;
    case 'manifestRevisionLink': return `${pathFor({ ...s, kind: 'manifestRevisionDir' })}/link`;
    case 'manifestTagsRoot': return `${repo(s.name)}/_manifests/tags`;
    case 'manifestTag': return `${repo(s.name)}/_manifests/tags/${s.tag}`;
    case 'manifestTagCurrent': return `${repo(s.name)}/_manifests/tags/${s.tag}/current/link`;
    case 'manifestTagIndexEntry':
      return `${repo(s.name)}/_manifests/tags/${s.tag}/index/${s.digest.algorithm}/${s.digest.hex}/link`;
    case 'uploadsRoot': return `${repo(s.name)}/_uploads`;
    case 'upload': return `${repo(s.name)}/_uploads/${s.id}`;
    case 'uploadData': return `${repo(s.name)}/_uploads/${s.id}/data`;
    case 'uploadStartedAt': return `${repo(s.name)}/_uploads/${s.id}/startedat`;
    case 'referrersRoot': return `${repo(s.name)}/_referrers/${s.subject.algorithm}/${s.subject.hex}`;
    case 'referrerLink':
      return `${pathFor({ kind: 'referrersRoot', name: s.name, subject: s.subject })}/${s.digest.algorithm}/${s.digest.hex}/link`;
    case 'writerLeasesRoot': return `${ROOT}/_berth/writer`;
    case 'writerLease': return `${ROOT}/_berth/writer/${s.holder}`;
  }
}
