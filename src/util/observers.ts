// A process-wide set of observers for one kind of event (storage calls, cache calls, upload commits), for
// metrics. A leaf module with no imports, so any layer may use it. An observer never fails, delays or
// changes the call it observes: report() swallows observer errors.

export interface Observers<E> {
  /** Calls `fn` after every reported event; returns the function that detaches it. */
  on(fn: (e: E) => void): () => void;
  report(e: E): void;
  /** Whether anyone listens (lets a hot path skip building the event). */
  readonly observed: boolean;
}

export function createObservers<E>(): Observers<E> {
  const fns = new Set<(e: E) => void>();
  return {
    on(fn) { fns.add(fn); return () => { fns.delete(fn); }; },
    report(e) { for (const fn of fns) { try { fn(e); } catch { /* an observer never fails a call */ } } },
    get observed() { return fns.size > 0; },
  };
}
