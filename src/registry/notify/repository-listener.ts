// The repository decorator that turns successful repository calls into notification events
// (Distribution's notifications.Listen): blob and manifest pulls, pushes (an upload's commit, a manifest
// put), mounts and deletes. Pushes, mounts and deletes resolve once their event is durable in the journal,
// so a client that saw success has its event on disk (a journal that cannot take it fails the request, the
// content stays stored and a retry records it); a pull does not wait for the disk and never fails because
// of its event (journaled in the background: a crash or a full disk can lose pulls' events, never a push's).
import type { Logger } from '../../log/logger.js';
import { forwarding, type Repository, type RepositoryDecorator } from '../core/repository.js';
import type { Action, TargetInfo } from './events.js';
import type { Notifier } from './listener.js';

const OCTET = 'application/octet-stream';

export function listen(notifier: Notifier, log: Logger): RepositoryDecorator {
  const durable = (action: Action, t: TargetInfo) => notifier.record(action, t);
  // A pull's answer never depends on its event: whatever goes wrong here is logged, never thrown.
  const background = (action: Action, t: TargetInfo) => {
    try {
      notifier.record(action, t, { background: true }).catch((err: unknown) => log.debug({ err, action }, 'could not journal a pull event'));
    } catch (err) {
      log.debug({ err, action }, 'could not journal a pull event');
    }
  };
  return (inner: Repository): Repository => {
    const repository = inner.name;
    const f = forwarding(inner);
    return {
      ...f,
      blobs: {
        ...f.blobs,
        async get(d, o) {
          const content = await inner.blobs.get(d, o);
          const { digest, size } = content.descriptor;
          background('pull', { repository, kind: 'blob', mediaType: OCTET, size, digest: digest.text });
          return content;
        },
        async mount(from, d, o) {
          const desc = await inner.blobs.mount(from, d, o);
          if (desc) {
            await durable('mount', { repository, kind: 'blob', mediaType: OCTET, size: desc.size, digest: desc.digest.text, fromRepository: from });
          }
          return desc;
        },
        async delete(d, o) {
          await inner.blobs.delete(d, o);
          await durable('delete', { repository, kind: 'blob', digest: d.text });
        },
      },
      uploads: {
        ...f.uploads,
        async commit(id, digest, last, o) {
          const desc = await inner.uploads.commit(id, digest, last, o);
          await durable('push', { repository, kind: 'blob', mediaType: OCTET, size: desc.size, digest: desc.digest.text });
          return desc;
        },
        async upload(digest, chunk, o) {
          const desc = await inner.uploads.upload(digest, chunk, o);
          await durable('push', { repository, kind: 'blob', mediaType: OCTET, size: desc.size, digest: desc.digest.text });
          return desc;
        },
      },
      manifests: {
        ...f.manifests,
        async get(ref, o) {
          const m = await inner.manifests.get(ref, o);
          background('pull', { repository, kind: 'manifest', mediaType: m.mediaType, size: m.bytes.length, digest: m.digest.text, tag: m.tag });
          return m;
        },
        async put(m, o) {
          const put = await inner.manifests.put(m, o);
          await durable('push', {
            repository, kind: 'manifest', mediaType: put.mediaType, size: put.size, digest: put.digest.text, tag: m.tags[0], manifest: m.bytes,
          });
          return put;
        },
        async delete(ref, o) {
          await inner.manifests.delete(ref, o);
          await durable('delete', 'tag' in ref ? { repository, kind: 'tag', tag: ref.tag } : { repository, kind: 'manifest', digest: ref.digest.text });
        },
      },
    };
  };
}
