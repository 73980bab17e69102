// Runs the real container clients (skopeo, podman, buildah) in a per-test sandbox: its own HOME, XDG dirs,
// TMPDIR, auth file, registries.conf (test registries marked insecure: plain HTTP on 127.0.0.1), policy.json,
// containers.conf, storage.conf and vfs storage root, so no test reads or writes the machine's config or images.
// It never starts registries and never kills anything but the child it spawned (by PID, on timeout).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Tool = 'skopeo' | 'podman' | 'buildah' | 'docker-registry' | 'redis-server' | 'htpasswd' | 'docker';

/** Debian package that provides each tool, for error messages and .ci/run. */
export const PACKAGE: Record<Tool, string> = {
  skopeo: 'skopeo', podman: 'podman', buildah: 'buildah', 'docker-registry': 'docker-registry',
  'redis-server': 'redis-server', htpasswd: 'apache2-utils', docker: 'docker.io',   // docker: the CLI only, no daemon needed
};

export class ToolError extends Error {
  constructor(readonly cmd: string, readonly args: readonly string[], readonly code: number | null,
              readonly stdout: string, readonly stderr: string, why: string) {
    super(`${cmd} ${args.join(' ')}: ${why}\n--- stderr ---\n${stderr.slice(-4000)}\n--- stdout ---\n${stdout.slice(-2000)}`);
  }
}

const which = new Map<string, boolean>();
function onPath(tool: string): boolean {
  let hit = which.get(tool);
  if (hit === undefined) {
    const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
    hit = dirs.some((d) => { try { accessSync(join(d, tool), constants.X_OK); return true; } catch { return false; } });
    which.set(tool, hit);
  }
  return hit;
}

/**
 * For `test(name, { skip: skipUnless('skopeo') }, …)`. Outside CI a missing tool skips the test with a message
 * naming it; under CI=true nothing skips: the test runs and fails at the first spawn with a clear message.
 */
export function skipUnless(...tools: Tool[]): string | false {
  const missing = tools.filter((t) => !onPath(t));
  if (missing.length === 0 || process.env.CI === 'true') return false;
  return `not installed: ${missing.join(', ')} (apt-get install ${missing.map((t) => PACKAGE[t]).join(' ')})`;
}

export interface RunOptions { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string; input?: string }
export interface RunResult { stdout: string; stderr: string }

/** Spawns cmd, captures output, kills it by PID (SIGKILL) after timeoutMs; throws ToolError on failure. */
export function run(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: o.env ?? process.env, cwd: o.cwd, stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = ''; let stderr = ''; let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    if (o.input !== undefined) child.stdin!.end(o.input);
    const timer = setTimeout(() => { timedOut = true; if (child.pid) process.kill(child.pid, 'SIGKILL'); }, timeoutMs);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = err.code === 'ENOENT'
        ? `not installed or not on PATH (Debian package: ${PACKAGE[cmd as Tool] ?? cmd})`
        : String(err);
      reject(new ToolError(cmd, args, null, stdout, stderr, why));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new ToolError(cmd, args, code, stdout, stderr,
        timedOut ? `timed out after ${timeoutMs} ms` : `exited with ${code ?? signal}`));
    });
  });
}

export interface Sandbox {
  dir: string;
  env: NodeJS.ProcessEnv;
  authFile: string;
  policy: string;
  /** skopeo with policy/tmpdir in the sandbox and TLS verification off for docker:// refs (see skopeoTls). */
  skopeo(args: string[], o?: RunOptions): Promise<RunResult>;
  /** podman with --root/--runroot/--tmpdir in the sandbox, vfs, cgroupfs, file events. */
  podman(args: string[], o?: RunOptions): Promise<RunResult>;
  /** buildah with --root/--runroot in the sandbox, vfs. */
  buildah(args: string[], o?: RunOptions): Promise<RunResult>;
  usedBuildah: boolean;
  /** Removes the sandbox (containers storage first, so vfs layer dirs with odd modes go too). */
  cleanup(): Promise<void>;
}

/**
 * Makes a sandbox whose registries.conf marks `registries` (host:port) insecure. Register `cleanup` in t.after.
 * Note: skopeo running as root keeps its blob-info cache in /var/lib/containers/cache whatever the env says
 * (containers/image 5.23 has no knob for it in skopeo 1.9); tests use freshly generated random layers, so
 * the shared cache never knows their digests.
 */
export async function createSandbox(registries: string[]): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-clients-'));
  const d = (p: string) => join(dir, p);
  for (const p of ['home', 'xdg-runtime', 'xdg-config', 'xdg-data', 'tmp', 'storage/root', 'storage/runroot', 'libpod-tmp']) await mkdir(d(p), { recursive: true, mode: 0o700 });
  const authFile = d('auth.json');
  const policy = d('policy.json');
  await writeFile(authFile, JSON.stringify({ auths: {} }), { mode: 0o600 });
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  await writeFile(d('registries.conf'), [
    'unqualified-search-registries = []',
    'short-name-mode = "disabled"',
    ...registries.flatMap((r) => ['', '[[registry]]', `location = "${r}"`, 'insecure = true']),
    '',
  ].join('\n'));
  await mkdir(d('registries.d'));
  await writeFile(d('storage.conf'), [
    '[storage]', 'driver = "vfs"', `graphroot = "${d('storage/root')}"`, `runroot = "${d('storage/runroot')}"`, '',
  ].join('\n'));
  await writeFile(d('containers.conf'), [
    '[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', `tmp_dir = "${d('libpod-tmp')}"`, '',
  ].join('\n'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    HOME: d('home'),
    TMPDIR: d('tmp'),
    XDG_RUNTIME_DIR: d('xdg-runtime'),
    XDG_CONFIG_HOME: d('xdg-config'),
    XDG_DATA_HOME: d('xdg-data'),
    REGISTRY_AUTH_FILE: authFile,
    CONTAINERS_REGISTRIES_CONF: d('registries.conf'),
    CONTAINERS_STORAGE_CONF: d('storage.conf'),
    CONTAINERS_CONF: d('containers.conf'),
  };
  const storageFlags = ['--root', d('storage/root'), '--runroot', d('storage/runroot'), '--storage-driver', 'vfs'];
  const withEnv = (o?: RunOptions): RunOptions => ({ ...o, env: { ...env, ...o?.env } });
  const sb: Sandbox = {
    dir, env, authFile, policy,
    skopeo: (args, o) => run('skopeo', ['--policy', policy, '--registries.d', d('registries.d'), '--tmpdir', d('tmp'), ...skopeoTls(args)], withEnv(o)),
    podman: (args, o) => run('podman', [...storageFlags, '--tmpdir', d('libpod-tmp'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', ...args], withEnv(o)),
    usedBuildah: false,
    buildah: (args, o) => { sb.usedBuildah = true; return run('buildah', [...storageFlags, ...args], withEnv(o)); },
    async cleanup() {
      // vfs storage holds plain directories, no mounts; drop working containers if buildah made any
      // (`podman system reset` is avoided: as root it also touches /etc/containers/networks).
      if (sb.usedBuildah) await sb.buildah(['rm', '--all'], { timeoutMs: 30_000 }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  return sb;
}

/** skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF (it reads /etc/containers/registries.conf only), so plain
 *  HTTP needs the explicit flags; they only affect docker:// references. Added unless the caller set them. */
function skopeoTls(args: string[]): string[] {
  if (args.some((a) => a.includes('tls-verify'))) return args;
  const i = args.findIndex((a) => SKOPEO_SUBCOMMANDS.has(a));
  if (i < 0) return args;
  const flags = args[i] === 'copy' || args[i] === 'sync' ? ['--src-tls-verify=false', '--dest-tls-verify=false'] : ['--tls-verify=false'];
  return [...args.slice(0, i + 1), ...flags, ...args.slice(i + 1)];
}
const SKOPEO_SUBCOMMANDS = new Set(['copy', 'sync', 'inspect', 'list-tags', 'delete', 'login', 'logout']);
