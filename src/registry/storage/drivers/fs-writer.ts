// writer()'s FileWriter for the filesystem driver: commit() ends the append stream, fsyncs and closes;
// cancel() closes and deletes the file. It must not open files or choose between O_DIRECT and the page
// cache (the driver hands it an open handle and the stream); exactly one of commit or cancel takes effect.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import type { FileWriter, OpOptions } from '../driver.js';
import type { AppendStream } from './fs-append-stream.js';
import type { DirectAppendStream } from './fs-direct-stream.js';

const closeFd = promisify(fs.close) as (fd: number) => Promise<void>;

/**
 * One writer on `file`: `fh` is open for appending (or writing) and `stream` appends through it (and,
 * for a DirectAppendStream, through `directFd`); `initial` is the file's size when it was opened.
 * The writer owns `fh` and `directFd` and closes both once, when it ends.
 */
export class FsWriter implements FileWriter {
  private state: 'open' | 'committed' | 'cancelled' = 'open';
  private closed: Promise<void> | undefined;
  private final: number | undefined;   // the file's size once committed

  constructor(private readonly file: string, private readonly fh: fsp.FileHandle,
    readonly stream: AppendStream | DirectAppendStream, private readonly initial: number,
    private readonly directFd?: number) {
    // Errors reach whoever pipes into the stream; this listener only keeps a stray error
    // (e.g. an abort after the pipeline settled) from crashing the process.
    stream.on('error', () => {});
  }

  get size(): number {
    return this.final ?? this.initial + this.stream.bytesWritten + this.stream.pendingBytes + this.stream.writableLength;
  }

  async commit(_o?: OpOptions): Promise<void> {
    if (this.state === 'committed') return;
    if (this.state === 'cancelled') throw new Error(`writer for ${this.file} was cancelled`);
    try {
      // After an aborted pipeline the stream is destroyed: once it has closed, what it took is in the file.
      if (this.stream.destroyed) await waitClosed(this.stream);
      else await settle(this.stream);
      if (this.stream.syncError) throw this.stream.syncError;   // seen once by a background sync (errseq)
      await this.fh.sync();
      this.final = (await this.fh.stat()).size;
      this.state = 'committed';
    } finally {
      await this.release();
    }
  }

  async cancel(_o?: OpOptions): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'cancelled';
    await this.release();
    await fsp.rm(this.file, { force: true });
  }

  /** Destroys the stream (it waits for its write or sync in flight), then closes the handle. */
  private release(): Promise<void> {
    return this.closed ??= (async () => {
      if (!this.stream.destroyed) this.stream.destroy();
      await waitClosed(this.stream);
      if (this.directFd !== undefined) await closeFd(this.directFd).catch(() => {});
      await this.fh.close();
    })();
  }
}

/** Ends the stream and waits until everything is written. */
async function settle(s: Writable): Promise<void> {
  if (s.writableFinished) return;
  if (s.errored) throw s.errored;
  await new Promise<void>((resolve, reject) => {
    const onFinish = () => { s.off('error', onError); resolve(); };
    const onError = (err: Error) => { s.off('finish', onFinish); reject(err); };
    s.once('finish', onFinish);
    s.once('error', onError);
    if (!s.writableEnded) s.end();
  });
}

function waitClosed(s: Writable): Promise<void> {
  if (s.closed) return Promise.resolve();
  return new Promise((resolve) => s.once('close', () => resolve()));
}
