// Streams exactly `length` bytes of a driver reader into a response: stream.pipeline's job (backpressure
// through write()'s return value and 'drain', errors and client disconnects on either side destroy both
// streams), plus two things pipeline cannot do: stop after `length` bytes (a Range) without a Transform,
// and hand each chunk back to the reader once the response's write callback says the socket is done
// with it (storage/recycle.ts), so a long GET reuses the reader's buffers instead of allocating.
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { recyclerOf } from '../../util/recycle.js';

/** Resolves when the response has finished (all bytes handed to the socket); rejects when either side
 *  fails or the client goes away (ERR_STREAM_PREMATURE_CLOSE); the reader is destroyed in every case. */
export function sendBody(src: Readable, res: ServerResponse, length: number): Promise<void> {
  const recycle = recyclerOf(src);
  src.on('error', () => {});   // errors are handled below until settled, and ignored after (src is destroyed)
  return new Promise<void>((resolve, reject) => {
    let left = length;
    let done = false;
    const settle = (err?: Error) => {
      if (done) return;
      done = true;
      src.off('data', onData); src.off('end', onEnd); src.off('error', settle); src.off('close', onSrcClose);
      res.off('drain', onDrain); res.off('finish', onFinish); res.off('close', onResClose); res.off('error', settle);
      src.destroy();
      if (err) { res.destroy(); reject(err); } else resolve();
    };
    if (length === 0) { res.end(); res.once('finish', () => settle()); return; }
    const onData = (chunk: Buffer) => {
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      const more = res.write(part, recycle && (() => recycle(chunk)));
      if (left === 0) {
        src.off('data', onData);
        src.pause();
        res.end();               // 'finish' settles
      } else if (!more) {
        src.pause();             // 'drain' resumes
      }
    };
    const onDrain = () => { if (left > 0) src.resume(); };
    const onEnd = () => { if (left > 0) settle(new Error(`blob data ended ${left} bytes short of ${length}`)); };
    const onSrcClose = () => { if (left > 0) settle(prematureClose('reader')); };
    const onFinish = () => settle();
    const onResClose = () => settle(prematureClose('response'));
    src.on('data', onData);
    src.once('end', onEnd);
    src.once('error', settle);
    src.once('close', onSrcClose);
    res.on('drain', onDrain);
    res.once('finish', onFinish);
    res.once('close', onResClose);   // after 'finish' on success (settled by then)
    res.once('error', settle);
  });
}

function prematureClose(side: string): Error {
  return Object.assign(new Error(`premature close (${side})`), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
