// A bounded Map of recent entries, for what a process keeps as a shortcut: the upload sessions' running hashes and
// start times (core/upload.ts), the S3 driver's known multipart uploads (storage/drivers/s3.ts).

/** A Map that forgets entries idle for `idleMs` and, beyond `max`, the least recently used. */
export class Recent<V> {
  private readonly m = new Map<string, { v: V; t: number }>();
  constructor(private readonly max: number, private readonly idleMs: number, private readonly now: () => number) {}
  get size(): number { this.expire(); return this.m.size; }
  get(k: string): V | undefined { this.expire(); return this.m.get(k)?.v; }
  set(k: string, v: V): void {
    this.m.delete(k);
    this.m.set(k, { v, t: this.now() });
    this.expire();
    if (this.m.size > this.max) this.m.delete(this.m.keys().next().value!);
  }
  delete(k: string): void { this.m.delete(k); }
  private expire(): void {
    const cutoff = this.now() - this.idleMs;
    for (const [k, e] of this.m) {
      if (e.t > cutoff) return;   // insertion order = last-set order: the rest are younger
      this.m.delete(k);
    }
  }
}
