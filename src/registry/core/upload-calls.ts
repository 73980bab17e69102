// Observers of committed blob uploads, for /metrics: upload.ts reports each session that became a blob, with
// the time from its start (POST) to the commit and its size. Process-wide, like storage/base.ts's onStorageCall
// and cache/cache-calls.ts. An observer never fails, delays or changes a commit.
import { createObservers } from '../../util/observers.js';

export interface UploadCommitEvent {
  /** Milliseconds from the session's start (its `startedat`) to the commit. */
  durationMs: number;
  size: number;
}

const uploadCommits = createObservers<UploadCommitEvent>();

/** Calls `fn` after every successful upload commit; returns the detach function. */
export const onUploadCommit = uploadCommits.on;
export const reportUploadCommit = uploadCommits.report;
/** Whether anyone listens (skips the clock read otherwise). */
export const uploadObserved = (): boolean => uploadCommits.observed;
