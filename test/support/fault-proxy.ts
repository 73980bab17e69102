// A fault-injecting TCP proxy for tests: a real net.Server on 127.0.0.1:0 piping every connection to a real
// upstream (the Ceph RGW on 127.0.0.1:7480), with a mode switchable at run time. It injects faults on a real
// network path (no mock of the store): `down` resets every connection, `stall` holds bytes in both directions,
// `slow` throttles them. It destroys only its own sockets, and all of them on close.
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * - `pass`: bytes flow unchanged.
 * - `down`: the store is gone: every open connection is reset (RST) and every new one is reset on accept
 *   (clients see ECONNRESET; the port stays ours, so nobody else can take it while the store is "down").
 * - `stall`: connections are accepted and held: no byte is forwarded either way (new or open connections)
 *   until the mode changes; then the held bytes flow on.
 * - `slow`: each direction of each connection forwards at most `bytesPerSecond`.
 */
export type FaultMode = 'pass' | 'down' | 'stall' | 'slow';

export interface FaultProxy {
  /** "127.0.0.1:PORT" */
  addr: string;
  /** http://127.0.0.1:PORT */
  url: string;
  readonly mode: FaultMode;
  /** The connections open now go silent for good (a NAT or load balancer that dropped their state: no byte,
   *  no FIN, no RST); new connections are not affected. The mode stays as it is. */
  blackholeOpen(): void;
  /** Switches the mode for open and new connections. */
  set(mode: FaultMode, o?: { bytesPerSecond?: number }): void;
  /** Goes `down` once `bytes` more bytes went from clients to the upstream (counted from now, all connections);
   *  the chunk that crosses the mark is cut at it, so the upstream sees exactly `bytes`. */
  downAfter(bytes: number): void;
  /** Resets the connection of each of the next `times` requests whose first bytes (client → upstream) match
   *  `pattern` (e.g. /^POST [^ ]*\?uploadId=/ for CompleteMultipartUpload), before the upstream sees them. */
  failRequests(pattern: RegExp, times: number): void;
  /** Requests failed by failRequests so far. */
  readonly failed: number;
  /** Connections accepted so far, and bytes forwarded client → upstream and back. */
  stats(): { accepted: number; open: number; up: number; down: number };
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: { host: string; port: number }): Promise<FaultProxy> {
  let mode: FaultMode = 'pass';
  let rate = 1 << 20;
  let budget: number | undefined;         // bytes client → upstream left before going down (downAfter)
  let failing: { pattern: RegExp; times: number } | undefined;
  let failed = 0;
  const held = new Set<() => void>();     // callbacks of chunks held by stall or slow, run on a mode change
  const pairs = new Set<[Socket, Socket]>();
  const silent = new WeakSet<Transform>();   // gates of black-holed connections
  const gates = new WeakMap<[Socket, Socket], Transform[]>();
  const stats = { accepted: 0, up: 0, down: 0 };

  function wake(): void {
    const all = [...held];
    held.clear();
    for (const f of all) f();
  }

  function resetAll(): void {
    for (const [a, b] of pairs) { a.resetAndDestroy(); b.resetAndDestroy(); }
    pairs.clear();
  }

  function set(next: FaultMode, o: { bytesPerSecond?: number } = {}): void {
    mode = next;
    if (o.bytesPerSecond) rate = o.bytesPerSecond;
    budget = undefined;
    if (mode === 'down') resetAll();
    wake();
  }

  /** One direction of a connection: forwards a chunk as the mode allows; `upward` counts towards downAfter. */
  function gate(upward: boolean): Transform {
    const forward = (t: Transform, chunk: Buffer, cb: TransformCallback): void => {
      if (chunk.length === 0 || t.destroyed) { cb(); return; }
      if (silent.has(t)) return;   // never forwarded, never acknowledged
      if (mode === 'down') { cb(); return; }   // the sockets are being reset: drop
      if (mode === 'stall') { held.add(() => forward(t, chunk, cb)); return; }
      if (upward && failing && failing.times > 0 && failing.pattern.test(chunk.subarray(0, 2048).toString('latin1'))) {
        failing.times--;
        failed++;
        cb();
        t.destroy(new Error('fault proxy: request failed on purpose'));
        return;
      }
      if (upward && budget !== undefined) {
        if (chunk.length >= budget) {
          const n = budget;
          budget = undefined;
          if (n > 0) t.push(chunk.subarray(0, n));
          stats.up += n;
          // let the cut bytes reach the upstream socket, then fail everything
          setImmediate(() => set('down'));
          cb();
          return;
        }
        budget -= chunk.length;
      }
      if (mode === 'slow') {
        const n = Math.max(1, Math.min(chunk.length, Math.ceil(rate / 20)));   // at most 1/20 s worth at a time
        const timer = setTimeout(() => {
          held.delete(resume);
          t.push(chunk.subarray(0, n));
          if (upward) stats.up += n; else stats.down += n;
          forward(t, chunk.subarray(n), cb);
        }, Math.ceil((n / rate) * 1000));
        const resume = () => { clearTimeout(timer); forward(t, chunk, cb); };
        held.add(resume);
        return;
      }
      if (upward) stats.up += chunk.length; else stats.down += chunk.length;
      cb(null, chunk);
    };
    return new Transform({ transform(chunk: Buffer, _enc, cb) { forward(this, chunk, cb); } });
  }

  const server = createServer((client) => {
    stats.accepted++;
    if (mode === 'down') { client.on('error', () => {}); client.resetAndDestroy(); return; }
    const store = connect(upstream.port, upstream.host);
    const pair: [Socket, Socket] = [client, store];
    pairs.add(pair);
    const end = () => { pairs.delete(pair); client.destroy(); store.destroy(); };
    for (const s of pair) s.on('error', end);
    // The client gone, nothing is left to deliver. The store closing (after a `Connection: close` answer) ends the
    // client only once what `down` still holds (throttled by `slow`) has reached it: the pipe ends it then.
    client.once('close', end);
    const up = gate(true);
    const down = gate(false);
    gates.set(pair, [up, down]);
    up.on('error', () => { pairs.delete(pair); client.resetAndDestroy(); store.resetAndDestroy(); });   // failRequests
    down.on('error', end);
    client.pipe(up).pipe(store);
    store.pipe(down).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    addr: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    get mode() { return mode; },
    set,
    downAfter(bytes) {
      if (mode !== 'pass') throw new Error(`downAfter needs mode pass (is ${mode})`);
      budget = bytes;
    },
    blackholeOpen() {
      for (const pair of pairs) for (const g of gates.get(pair) ?? []) silent.add(g);
    },
    failRequests(pattern, times) { failing = { pattern, times }; },
    get failed() { return failed; },
    stats: () => ({ ...stats, open: pairs.size }),
    close() {
      closed ??= new Promise<void>((resolve) => {
        held.clear();
        for (const [a, b] of pairs) { a.destroy(); b.destroy(); }
        pairs.clear();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}
