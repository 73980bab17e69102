// Page-aligned memory blocks for O_DIRECT I/O (fs-direct-stream.ts, the filesystem driver's reader).
// O_DIRECT needs the user buffer aligned to the device's logical block size, and Node has no aligned
// allocation: Buffer memory comes from malloc (16-byte aligned). A WebAssembly.Memory's buffer is mapped by
// V8 on a page boundary, so each block is one Memory. Memory can never be returned to the OS while a Memory
// lives, so the pool is bounded twice: at most IDLE_MAX_BYTES of idle blocks are kept (the rest are dropped
// and freed by the garbage collector), and at most MAX_LIVE_BYTES of blocks exist at once; past that
// takeBlock() returns null and the caller uses the page cache for that piece of I/O. The same null comes
// back if V8 cannot map another Memory (each reserves guard regions of address space, which V8 caps).
// A block counts while it is in use or idle. One given back beyond the idle cap is dropped (uncounted at
// once; the garbage collector unmaps it); one never given back (a for-await consumer, a client gone
// mid-GET) is uncounted when the collector frees it (a FinalizationRegistry), so it cannot leak budget.

/** Write staging blocks: one O_DIRECT write each; an upload holds at most two (one filling, one written). */
export const WRITE_BLOCK = 1024 * 1024;
/** Read blocks: 2 MiB, as 1 MiB reads left a 1 GiB GET ~15% slower (see DIRECT_DEPTH in filesystem.ts). */
export const READ_BLOCK = 2 * 1024 * 1024;
const WASM_PAGE = 64 * 1024;
/** All blocks, in use or idle. 32 MiB: four uploads (8 MiB) and a few GETs at full speed; beyond it the
 *  page cache carries the rest, and the 4-upload peak RSS stays under its 150 MiB budget. */
const MAX_LIVE_BYTES = 32 * 1024 * 1024;
/** Idle blocks kept, per block size: 4 MiB. More would sit in the RSS of an idle server after a burst of
 *  GETs. Per size, because with one shared cap idle read blocks left after a pull made every write block
 *  given back a drop, and every next one a new Memory (mapped, faulted in, later collected): an upload after
 *  a skopeo pull ran at 230 MB/s and 5.0 server CPU-s per GiB instead of 350 MB/s and 3.3. */
const IDLE_MAX_BYTES = 4 * 1024 * 1024;

// Node has WebAssembly at run time; the project's TypeScript libs (no DOM) do not declare it.
declare const WebAssembly: { Memory: new (d: { initial: number; maximum?: number }) => { readonly buffer: ArrayBuffer } };

const idle = new Map<number, Buffer[]>();
let liveBytes = 0;
let idleBytes = 0;                          // all sizes
const idleBySize = new Map<number, number>();
interface Counted { size: number; counted: boolean }
const counted = new WeakMap<ArrayBuffer, Counted>();
const freed = new FinalizationRegistry<Counted>((c) => { if (c.counted) liveBytes -= c.size; });

/** A page-aligned buffer of `size` bytes (a multiple of 64 KiB; contents undefined), or null when the
 *  budget is used up or no aligned memory can be mapped. */
export function takeBlock(size: number): Buffer | null {
  const b = idle.get(size)?.pop();
  if (b) { idleBytes -= size; idleBySize.set(size, idleBySize.get(size)! - size); return b; }
  if (liveBytes + size > MAX_LIVE_BYTES) dropIdle(liveBytes + size - MAX_LIVE_BYTES);   // of another size
  if (liveBytes + size > MAX_LIVE_BYTES) return null;
  let ab: ArrayBuffer;
  try {
    ab = new WebAssembly.Memory({ initial: size / WASM_PAGE, maximum: size / WASM_PAGE }).buffer;
  } catch {
    return null;   // RangeError: V8's address-space budget for wasm memories is used up
  }
  liveBytes += size;
  const c: Counted = { size, counted: true };
  counted.set(ab, c);
  freed.register(ab, c);
  return Buffer.from(ab);
}

/** Returns a block taken with takeBlock() once no I/O uses it any more. */
export function giveBack(b: Buffer): void {
  const held = idleBySize.get(b.length) ?? 0;
  if (held + b.length <= IDLE_MAX_BYTES) {
    let list = idle.get(b.length);
    if (!list) idle.set(b.length, (list = []));
    list.push(b);
    idleBytes += b.length;
    idleBySize.set(b.length, held + b.length);
  } else {
    uncount(b);
  }
}

/** A dropped block: no longer counted; the garbage collector unmaps it. */
function uncount(b: Buffer): void {
  const c = counted.get(b.buffer as ArrayBuffer);
  if (c?.counted) { c.counted = false; liveBytes -= c.size; }
}

/** Drops idle blocks (of any size) until `bytes` are uncounted or none are left. */
function dropIdle(bytes: number): void {
  for (const list of idle.values()) {
    while (bytes > 0 && list.length) {
      const b = list.pop()!;
      idleBytes -= b.length;
      idleBySize.set(b.length, idleBySize.get(b.length)! - b.length);
      bytes -= b.length;
      uncount(b);
    }
  }
}

/** Blocks in use or idle, in bytes (for tests). */
export function blockBytes(): { live: number; idle: number } { return { live: liveBytes, idle: idleBytes }; }
