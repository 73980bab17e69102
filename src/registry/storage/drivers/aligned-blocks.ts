// Page-aligned memory blocks for O_DIRECT writes (fs-direct-stream.ts). O_DIRECT needs the user buffer
// aligned to the device's logical block size, and Node has no aligned allocation: Buffer memory comes from
// malloc (16-byte aligned). A WebAssembly.Memory's buffer is mapped by V8 on a page boundary, so slabs are
// Memory objects cut into BLOCK-sized views; every block starts on a 64 KiB wasm page, far beyond any
// logical block size. A slab is freed by the garbage collector once none of its blocks is referenced.
//
// Each Memory reserves guard regions of virtual address space (not memory) and V8 caps that space, so
// taking a block can fail under extreme concurrency: takeBlock() then returns null and the caller writes
// through the page cache instead.

/** Bytes per block: one O_DIRECT write or read each. 2 MiB: reads of 1 MiB left a GET ~15% slower (see
 *  DIRECT_DEPTH in filesystem.ts); an upload holds at most two blocks (one filling, one being written). */
export const BLOCK = 2 * 1024 * 1024;
const WASM_PAGE = 64 * 1024;
const SLAB_BLOCKS = 8;           // blocks cut from one Memory
const IDLE_MAX = 8;              // idle blocks kept for reuse, process-wide (8 MiB)

const idle: Buffer[] = [];

// Node has WebAssembly at run time; the project's TypeScript libs (no DOM) do not declare it.
declare const WebAssembly: { Memory: new (d: { initial: number; maximum?: number }) => { readonly buffer: ArrayBuffer } };

/** A BLOCK-sized, page-aligned buffer (contents undefined), or null when no aligned memory can be had. */
export function takeBlock(): Buffer | null {
  const b = idle.pop();
  if (b) return b;
  let ab: ArrayBuffer;
  try {
    const pages = (BLOCK * SLAB_BLOCKS) / WASM_PAGE;
    ab = new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer;
  } catch {
    return null;   // RangeError: V8's address-space budget for wasm memories is used up
  }
  for (let i = SLAB_BLOCKS - 1; i > 0; i--) idle.push(Buffer.from(ab, i * BLOCK, BLOCK));
  return Buffer.from(ab, 0, BLOCK);
}

/** Returns a block taken with takeBlock() once no I/O uses it any more. */
export function giveBack(b: Buffer): void {
  if (idle.length < IDLE_MAX) idle.push(b);
}

/** Idle blocks (for tests). */
export function idleBlocks(): number { return idle.length; }
