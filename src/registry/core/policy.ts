// The registry's write policy (storage.maintenance.readonly, storage.delete.enabled), asked by the core
// operations that write or delete, so every caller gets the same answer. No I/O.
import { OperationUnsupportedError } from './errors.js';

export class Policy {
  constructor(readonly opts: { readonly: boolean; deleteEnabled: boolean }) {}

  /** OperationUnsupportedError in read-only mode. */
  assertWritable(): void {
    if (this.opts.readonly) throw new OperationUnsupportedError('registry is in read-only mode');
  }

  /** OperationUnsupportedError in read-only mode or when deletes are disabled. */
  assertDeletable(): void {
    this.assertWritable();
    if (!this.opts.deleteEnabled) throw new OperationUnsupportedError('deletes are disabled');
  }
}
