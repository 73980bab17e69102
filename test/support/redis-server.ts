// A real redis-server for tests, listening only on a unix socket in its own temp dir (`--port 0`
// disables TCP, so there is no port to race for). It can be SIGKILLed and restarted on the same
// socket. It kills only the PID it spawned; `redisAvailable()` lets tests skip outside CI. A server that is
// not ready within 15 s is killed and the start fails with its output.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { makeTempDir } from './tmp.js';
import { withDeadline } from './wait.js';

const READY_TIMEOUT_MS = 15_000;

export function redisAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Skip reason when redis-server is missing; under CI=true a missing redis-server is a failure. */
export function redisSkip(): string | false {
  if (redisAvailable()) return false;
  if (process.env.CI === 'true') throw new Error('redis-server is required under CI=true (.ci/run installs it)');
  return 'redis-server not installed';
}

export interface TestRedis {
  /** Unix socket path (node-redis `socket.path`). */
  socket: string;
  readonly pid: number;
  /** SIGKILL the server and wait for it to exit. */
  kill(): Promise<void>;
  /** Start it again on the same socket (after kill); resolves once it accepts connections. */
  restart(): Promise<void>;
  /** Kill (if running) and remove the temp dir. Idempotent. */
  close(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => { for (const c of live) try { c.kill('SIGKILL'); } catch { /* gone */ } });

export async function startRedis(o: { password?: string } = {}): Promise<TestRedis> {
  const dir = await makeTempDir('berth-redis-');
  const socket = join(dir.path, 'redis.sock');
  const args = ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no',
    '--dir', dir.path, ...(o.password ? ['--requirepass', o.password] : [])];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async () => {
    let out = '';
    const c = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    live.add(c);
    exited = new Promise((r) => c.once('exit', () => { live.delete(c); r(); }));
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (s: string) => {
        out += s;
        if (/Ready to accept connections/i.test(out)) { c.stdout!.off('data', onData); resolve(); }
      };
      c.stdout!.setEncoding('utf8').on('data', onData);
      c.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s; });
      c.once('error', reject);
      void exited.then(() => reject(new Error(`redis-server exited before it was ready:\n${out}`)));
    });
    try {
      await withDeadline(ready, READY_TIMEOUT_MS, 'redis-server to accept connections', () => out);
    } catch (err) {
      await kill();
      throw err;
    }
  };

  const kill = async () => {
    const c = child;
    if (!c || c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGKILL');
    await exited;
  };
  await launch().catch(async (err) => { await dir.cleanup(); throw err; });
  let closed = false;
  return {
    socket,
    get pid() { return child!.pid!; },
    kill,
    restart: launch,
    async close() {
      if (closed) return;
      closed = true;
      await kill();
      await dir.cleanup();
    },
  };
}
