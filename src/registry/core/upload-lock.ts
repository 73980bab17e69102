// The cross-replica upload lock: several processes on one store (S3 replicas behind a load balancer) must not
// write one upload session at once. Within a process UploadStates.locked serialises a session's requests; across
// processes nothing did, and two PATCHes of one session at the same offset (a client retrying on replica B while
// replica A still writes) both pass the range check, both write the same parts, and the last writer's bytes win
// part by part. A process that kept the running hash of its own bytes would then commit a blob whose content is
// not its digest. With this lock (cache/redis-upload-lock.ts, used whenever `registry.redis` is configured) the
// second request waits for the first to finish, then finds the session moved on (416 with the new Range).
//
// lockUploads wraps the Uploads seam (a RepositoryDecorator): append, commit and cancel run holding the lock of
// "<repo>::<id>"; start and monolithic upload() make a session nobody else knows; status only reads the store
// (the parts stored so far and a tail valid for them: a consistent prefix) and never waits for another replica.
import type { OpOptions } from '../storage/driver.js';
import { forwarding, type RepositoryDecorator } from './repository.js';

export interface UploadLock {
  /**
   * Runs fn holding `key`. Waits a bounded time for another holder, then rejects with UploadBusyError. fn gets
   * the signal to pass down: o.signal, also aborted when the lock is lost while fn runs (then run() rejects with
   * UploadBusyError). When the lock service is unavailable, fn runs without the lock (logged by the implementation).
   */
  run<T>(key: string, fn: (signal: AbortSignal | undefined) => Promise<T>, o?: OpOptions): Promise<T>;
  close(): Promise<void>;
}

export function lockUploads(lock: UploadLock): RepositoryDecorator {
  return (inner) => {
    const f = forwarding(inner);
    const u = f.uploads;
    const locked = <T>(id: string, o: OpOptions | undefined, op: (o: OpOptions) => Promise<T>): Promise<T> =>
      lock.run(`${inner.name}::${id}`, (signal) => op({ ...o, signal }), o);
    return {
      ...f,
      uploads: {
        ...u,
        append: (id, chunk, o) => locked(id, o, (x) => u.append(id, chunk, x)),
        commit: (id, digest, last, o) => locked(id, o, (x) => u.commit(id, digest, last, x)),
        cancel: (id, o) => locked(id, o, (x) => u.cancel(id, x)),
      },
    };
  };
}
