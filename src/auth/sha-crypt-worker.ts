// SHA-256/512-crypt ($5$/$6$) checks off the event loop: unixcrypt is plain JavaScript (5000 rounds of SHA-512
// take ~20 ms, rounds= can ask for far more), so the checks run in one worker thread, one at a time (the check
// gate bounds how many wait). The worker is started on first use and never keeps the process alive. If it cannot
// run, the check runs inline. Never logs or returns a password.
import { Worker } from 'node:worker_threads';
import { verify as inlineVerify } from 'unixcrypt';

// The worker imports unixcrypt by the URL the main thread resolved (an eval'd worker has no module path of its own).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.unixcrypt).then(({ verify }) => {
  parentPort.on('message', ({ id, password, hash }) => {
    let ok = false;
    try { ok = verify(Buffer.from(password).toString('utf8'), hash); } catch { ok = false; }
    parentPort.postMessage({ id, ok });
  });
  parentPort.postMessage({ ready: true });
});
`;

let worker: Worker | null = null;
let failed = false;
let nextId = 0;
const pending = new Map<number, { password: Buffer; hash: string; done: (ok: boolean) => void }>();

function start(): Worker | null {
  if (worker || failed) return worker;
  try {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { unixcrypt: import.meta.resolve('unixcrypt') } });
    w.unref();
    w.on('message', (m: { id?: number; ok?: boolean }) => {
      if (m.id === undefined) return;
      pending.get(m.id)?.done(m.ok === true);
      pending.delete(m.id);
    });
    const lost = () => {   // check what was waiting inline, and run inline from now on
      failed = true;
      worker = null;
      for (const [id, p] of pending) { pending.delete(id); p.done(inlineVerify(p.password.toString('utf8'), p.hash)); }
    };
    w.on('error', lost);
    w.on('exit', lost);
    worker = w;
  } catch {
    failed = true;
  }
  return worker;
}

/** Checks `password` (the client's bytes; hashed as UTF-8, as unixcrypt does) against a $5$/$6$ hash. */
export function verifyShaCrypt(password: Buffer, hash: string): Promise<boolean> {
  const w = start();
  if (!w) return Promise.resolve(inlineVerify(password.toString('utf8'), hash));
  const id = nextId++;
  return new Promise<boolean>((resolve) => {
    pending.set(id, { password, hash, done: resolve });
    w.ref();   // keep the process while a check is in flight, so its answer arrives
    w.postMessage({ id, password: new Uint8Array(password), hash });
  }).finally(() => { if (pending.size === 0) worker?.unref(); });
}
