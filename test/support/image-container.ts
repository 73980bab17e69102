// Runs an image the way `docker run` would, with what these machines allow: a buildah working container
// (`buildah from`), its environment set on the container (so every later `buildah run`, like `docker exec` and
// the HEALTHCHECK, sees it), bind mounts, and `buildah run --isolation chroot --network host` of the image's
// own ENTRYPOINT + CMD. Stopping signals the image's process (a descendant of the buildah it spawned, found
// in /proc), never buildah itself (buildah answers a signal by killing its child). It kills only its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import type { ImageStore } from './image-base.js';
import type { RunResult } from './clients.js';
import { waitUntil, withDeadline } from './wait.js';

/** The parts of `buildah inspect --type image` (Docker format) the tests read. */
export interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[] | null;
  Cmd: string[] | null;
  WorkingDir: string;
  Volumes: Record<string, object> | null;
  ExposedPorts: Record<string, object> | null;
  Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
}

export async function inspectImage(store: ImageStore, ref: string): Promise<ImageConfig> {
  const j = JSON.parse((await store.buildah(['inspect', '--type', 'image', ref])).stdout) as { Docker: { config: ImageConfig } };
  return j.Docker.config;
}

/** A mount as `docker run -v HOST:CONTAINER[:ro]`. */
export interface Mount { host: string; container: string; ro?: boolean }

/** Per-run additions (`docker run --user`, `-e`, `-v` on top of the container's). */
export interface RunExtras { mounts?: Mount[]; env?: Record<string, string>; user?: string }

export interface Exit { code: number | null; signal: NodeJS.Signals | null }

export interface Started {
  /** buildah's PID (the process this module spawned). */
  pid: number;
  output(): string;
  exited: Promise<Exit>;
  /** SIGTERM to the image's main process (PID 1 of a real container), then wait for buildah to exit. */
  stop(graceMs?: number): Promise<Exit>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => { for (const c of live) if (c.pid && c.exitCode === null) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } } });

export class TestContainer {
  private readonly runs: Started[] = [];
  private constructor(readonly store: ImageStore, readonly id: string, readonly image: ImageConfig, readonly mounts: Mount[]) {}

  /** `buildah from --name NAME IMAGE`, then `buildah config --env` for each of `env` (as `docker run -e`). */
  static async create(store: ImageStore, image: string, name: string, o: { env?: Record<string, string>; mounts?: Mount[] } = {}): Promise<TestContainer> {
    const config = await inspectImage(store, image);
    const id = (await store.buildah(['from', '--pull=never', '--name', name, image])).stdout.trim();
    const c = new TestContainer(store, id, config, o.mounts ?? []);
    const env = Object.entries(o.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    // An image VOLUME that a bind mount covers is dropped from the working container: buildah 1.28 otherwise
    // sometimes mounts its own anonymous volume there instead of the bind (the data then never reaches the host
    // directory), where docker and podman give `-v` precedence.
    const covered = Object.keys(config.Volumes ?? {}).filter((v) => c.mounts.some((m) => m.container === v)).flatMap((v) => ['--volume', `${v}-`]);
    if (env.length || covered.length) await store.buildah(['config', ...env, ...covered, id]);
    return c;
  }

  private runArgs(x: RunExtras, argv: string[]): string[] {
    const vols = [...this.mounts, ...(x.mounts ?? [])].flatMap((m) => ['-v', `${m.host}:${m.container}${m.ro ? ':ro' : ''}`]);
    const env = Object.entries(x.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    const user = x.user ? ['--user', x.user] : [];
    return ['run', '--isolation', 'chroot', '--network', 'host', ...vols, ...env, ...user, this.id, '--', ...argv];
  }

  /** The image's ENTRYPOINT followed by `args` (default: its CMD), as `docker run IMAGE [ARGS]` runs it. */
  command(args?: string[]): string[] {
    return [...(this.image.Entrypoint ?? []), ...(args ?? this.image.Cmd ?? [])];
  }

  /** Runs argv in the container to completion (like `docker exec`): exit code and output, never throws on a
   *  non-zero exit. */
  async exec(argv: string[], o: RunExtras & { timeoutMs?: number } = {}): Promise<RunResult & { code: number | null }> {
    const started = this.spawn(argv, o);
    const exit = await withDeadline(started.exited, o.timeoutMs ?? 60_000, `buildah run ${argv.join(' ')}`, started.output)
      .catch(async (err: unknown) => { await started.stop(1000); throw err; });
    return { code: exit.code, stdout: started.output(), stderr: '' };
  }

  /** The image's HEALTHCHECK, as the engine runs it (CMD: argv; CMD-SHELL: /bin/sh -c); exit code 0 = healthy. */
  async healthcheck(x: RunExtras = {}): Promise<RunResult & { code: number | null }> {
    const test = this.image.Healthcheck?.Test;
    if (!test?.length || test[0] === 'NONE') throw new Error('the image has no HEALTHCHECK');
    const argv = test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', test[1]!] : test.slice(1);
    // The engine kills a check after its timeout; buildah's own start-up comes on top here.
    return this.exec(argv, { ...x, timeoutMs: (this.image.Healthcheck!.Timeout ?? 30e9) / 1e6 + 30_000 });
  }

  /** Starts argv (default: the image's ENTRYPOINT + CMD) in the background. */
  start(argv: string[] = this.command(), x: RunExtras = {}): Started {
    return this.spawn(argv, x);
  }

  private spawn(argv: string[], x: RunExtras): Started {
    const child = spawn('buildah', [...this.store.flags, ...this.runArgs(x, argv)], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const exited = new Promise<Exit>((res) => {
      child.once('error', (err) => { out += `\nspawn buildah: ${String(err)}`; live.delete(child); res({ code: null, signal: null }); });
      child.once('close', (code, signal) => { live.delete(child); res({ code, signal }); });
    });
    const pid = child.pid ?? -1;
    let stopping: Promise<Exit> | undefined;
    const started: Started = {
      pid, exited, output: () => out,
      stop(graceMs = 15_000) {
        if (stopping) return stopping;
        if (child.exitCode !== null || child.signalCode !== null || pid < 0) return (stopping = exited);
        stopping = (async () => {
          // Not found (it never started): SIGTERM to buildah, which kills its child and cleans up. SIGKILL to
          // buildah would orphan the chroot processes, so the grace timer kills the main process first.
          const main = await mainProcess(pid, argv[0]!).catch(() => undefined);
          const kill = (p: number, sig: NodeJS.Signals) => { try { process.kill(p, sig); } catch { /* gone */ } };
          kill(main ?? pid, 'SIGTERM');
          const t = setTimeout(() => { if (main) kill(main, 'SIGKILL'); if (child.exitCode === null) kill(pid, 'SIGKILL'); }, graceMs);
          try { return await exited; } finally { clearTimeout(t); }
        })();
        return stopping;
      },
    };
    this.runs.push(started);
    return started;
  }

  /** Stops what still runs in it, then `buildah rm` (removing a container under a running process leaves the
   *  process without its filesystem). */
  async remove(): Promise<void> {
    await Promise.all(this.runs.map((r) => r.stop()));
    await this.store.buildah(['rm', this.id]).catch(() => undefined);
  }
}

/** Parent PID and argv[0]'s base name of every process (/proc/PID/stat and cmdline; Node 24 renames its
 *  main thread, so `comm` says MainThread, not node). */
async function processTable(): Promise<Map<number, { ppid: number; argv0: string }>> {
  const table = new Map<number, { ppid: number; argv0: string }>();
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const stat = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    const m = /^\d+ \(.*\) \S+ (\d+)/s.exec(stat);
    const argv0 = (await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '')).split('\0')[0]!.split('/').pop()!;
    if (m) table.set(Number(e), { ppid: Number(m[1]), argv0 });
  }
  return table;
}

/**
 * The image's main process: the descendant of buildah (`root`) whose name is argv[0]'s base name (buildah
 * forks buildah-chroot-runtime, which forks buildah-chroot-exec, which execs the command), within a deadline.
 */
export async function mainProcess(root: number, argv0: string): Promise<number> {
  const name = argv0.split('/').pop()!;
  return waitUntil(`the process ${name} under buildah ${root}`, async () => {
    const table = await processTable();
    const queue = [root];
    while (queue.length) {
      const p = queue.shift()!;
      for (const [pid, info] of table) {
        if (info.ppid !== p) continue;
        if (info.argv0 === name) return pid;
        queue.push(pid);
      }
    }
    return undefined;
  }, { timeoutMs: 10_000, intervalMs: 50 });
}
