// Observers of committed blob uploads, for /metrics: upload.ts reports each session that became a blob, with
// the time from its start (POST) to the commit and its size. Process-wide, like storage/base.ts's onStorageCall
// and cache/cache-calls.ts. An observer never fails, delays or changes a commit.

export interface UploadCommitEvent {
  /** Milliseconds from the session's start (its `startedat`) to the commit. */
  durationMs: number;
  size: number;
}

const observers = new Set<(e: UploadCommitEvent) => void>();

/** Calls `fn` after every successful upload commit; returns the detach function. */
export function onUploadCommit(fn: (e: UploadCommitEvent) => void): () => void {
  observers.add(fn);
  return () => { observers.delete(fn); };
}

export function reportUploadCommit(e: UploadCommitEvent): void {
  for (const fn of observers) { try { fn(e); } catch { /* an observer never fails a commit */ } }
}

/** Whether anyone listens (skips the clock read otherwise). */
export function uploadObserved(): boolean { return observers.size > 0; }
