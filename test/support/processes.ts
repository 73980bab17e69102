// Starts real server processes for e2e/interop tests: the built berth CLI (`dist/bundle/main.js serve`) and
// CNCF Distribution 2.8 (`docker-registry serve`), each on 127.0.0.1:0, reading the real port from the
// process's own "listening on" log line. It kills only the PIDs it spawned (also on test-process exit).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withDeadline } from './wait.js';

/** Repository root, whether this file runs from test/support (tsx) or dist/test/support (compiled). */
export const REPO_ROOT = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    d = up;
  }
  return d;
})();
// What ships (package.json bin, npm start, the Dockerfile): the bundle scripts/bundle.mjs makes from tsc's output.
export const BERTH_MAIN = join(REPO_ROOT, 'dist', 'bundle', 'main.js');

const live = new Set<ChildProcess>();
process.once('exit', () => { for (const c of live) if (c.pid && c.exitCode === null && c.signalCode === null) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } } });

export interface Exit { code: number | null; signal: NodeJS.Signals | null }

export interface ServerProcess {
  url: string;                 // http://127.0.0.1:PORT
  host: string;                // 127.0.0.1:PORT (for registries.conf and image refs)
  root: string;                // storage root directory
  pid: number;
  output(): { stdout: string; stderr: string };
  /** Resolves when the process has exited (for any reason). */
  exited: Promise<Exit>;
  /** SIGTERM (or `signal`), wait for exit (SIGKILL after graceMs, default 15 s). Idempotent. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<Exit>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<Exit>;
  /** Stops the process, then removes its temp dirs (and root when it created it). */
  close(): Promise<void>;
}

interface SpawnSpec { cmd: string; args: string[]; what: string; readyPattern: RegExp; toUrl(m: RegExpMatchArray): string; root: string; cleanupDirs: string[]; timeoutMs?: number; env?: NodeJS.ProcessEnv }

function spawnServer(s: SpawnSpec): Promise<ServerProcess> {
  const child = spawn(s.cmd, s.args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...s.env } });
  live.add(child);
  let stdout = ''; let stderr = '';
  const exited = new Promise<Exit>((res) => child.once('exit', (code, signal) => { live.delete(child); res({ code, signal }); }));
  const describe = () => `${s.what} (${s.cmd} ${s.args.join(' ')})\n--- stdout ---\n${stdout.slice(-4000)}\n--- stderr ---\n${stderr.slice(-4000)}`;
  return new Promise<ServerProcess>((resolveStart, rejectStart) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return; settled = true; clearTimeout(timer);
      if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      void Promise.all(s.cleanupDirs.map((d) => rm(d, { recursive: true, force: true })));
      rejectStart(new Error(`${why}: ${describe()}`));
    };
    const timer = setTimeout(() => fail(`not listening after ${s.timeoutMs ?? 20_000} ms`), s.timeoutMs ?? 20_000);
    const check = () => {
      if (settled) return;
      const m = (stdout + '\n' + stderr).match(s.readyPattern);
      if (!m) return;
      settled = true; clearTimeout(timer);
      const url = s.toUrl(m);
      let stopping: Promise<Exit> | undefined;
      const proc: ServerProcess = {
        url, host: new URL(url).host, root: s.root, pid: child.pid!, exited,
        output: () => ({ stdout, stderr }),
        stop(signal = 'SIGTERM', graceMs = 15_000) {
          if (stopping) return stopping;
          if (child.exitCode !== null || child.signalCode !== null) return (stopping = exited);
          process.kill(child.pid!, signal);
          const t = setTimeout(() => { if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL'); }, graceMs);
          return (stopping = exited.finally(() => clearTimeout(t)));
        },
        kill() { return proc.stop('SIGKILL'); },
        async close() {
          await proc.stop();
          await Promise.all(s.cleanupDirs.map((d) => rm(d, { recursive: true, force: true })));
        },
      };
      resolveStart(proc);
    };
    child.stdout!.setEncoding('utf8').on('data', (c: string) => { stdout += c; check(); });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; check(); });
    child.once('error', (e) => fail(`could not start: ${String(e)}`));
    void exited.then((e) => fail(`exited early with ${e.code ?? e.signal}`));
  });
}

export interface BerthOptions {
  /** Storage root to use (kept on close). Default: a fresh temp dir removed on close. */
  root?: string;
  deleteEnabled?: boolean;            // default true
  /** Replaces the whole generated config (use `ROOT` where the storage root goes). */
  configYaml?: string;
  /** Appended to the generated config (extra top-level keys). */
  extraYaml?: string;
  logLevel?: string;                  // default info
  env?: NodeJS.ProcessEnv;
  /** Extra `serve` arguments, e.g. ['--dev-cert']. */
  args?: string[];
  /** 'env': no --config; the file is named by REGISTRY_CONFIGURATION_PATH (config discovery). Default 'flag'. */
  configFrom?: 'flag' | 'env';
}

export function berthConfigYaml(root: string, o: Pick<BerthOptions, 'deleteEnabled' | 'logLevel' | 'extraYaml'> = {}): string {
  return [
    'listen: 127.0.0.1:0',
    'upstreams:',
    '  v2: embedded',
    'registry:',
    '  storage:',
    '    filesystem:',
    `      rootdirectory: ${JSON.stringify(root)}`,
    '    delete:',
    `      enabled: ${o.deleteEnabled ?? true}`,
    'log:',
    `  level: ${o.logLevel ?? 'info'}`,
    o.extraYaml ?? '',
  ].join('\n') + '\n';
}

/** Throws with the build hint when dist/ is missing (the CLI tests need `npm run build`; npm test does it). */
export function assertBuilt(): void {
  if (!existsSync(BERTH_MAIN)) throw new Error(`${BERTH_MAIN} does not exist: run \`npm run build\` first (npm test does)`);
}

export interface CliRun { code: number | null; stdout: string; stderr: string }

/** Runs the built CLI to completion with a clean environment (PATH plus `env`: no REGISTRY_* leaking in).
 *  A run still going after `timeoutMs` (default 30 s) is SIGKILLed and fails with its output. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<CliRun> {
  assertBuilt();
  const child = spawn(process.execPath, [BERTH_MAIN, ...args], { cwd: REPO_ROOT, env: { PATH: process.env.PATH, ...env } });
  live.add(child);
  let stdout = ''; let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  const closed = new Promise<number | null>((res, rej) => { child.once('error', rej).once('close', (c) => res(c)); });
  try {
    const code = await withDeadline(closed, timeoutMs, `berth ${args.join(' ')} to exit`, () => `stdout: ${stdout}\nstderr: ${stderr}`);
    return { code, stdout, stderr };
  } catch (err) {
    if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    throw err;
  } finally {
    live.delete(child);
  }
}

/** Starts `node dist/bundle/main.js serve --config FILE` (build first: `npm run build`). */
export async function startBerth(o: BerthOptions = {}): Promise<ServerProcess> {
  assertBuilt();
  const confDir = await mkdtemp(join(tmpdir(), 'berth-conf-'));
  const root = o.root ?? await mkdtemp(join(tmpdir(), 'berth-data-'));
  const file = join(confDir, 'gateway.yml');
  await writeFile(file, o.configYaml ? o.configYaml.replaceAll('ROOT', root) : berthConfigYaml(root, o));
  return spawnServer({
    cmd: process.execPath, args: [BERTH_MAIN, 'serve', ...(o.configFrom === 'env' ? [] : ['--config', file]), ...(o.args ?? [])], what: 'berth', root,
    env: o.configFrom === 'env' ? { ...o.env, REGISTRY_CONFIGURATION_PATH: file } : o.env,
    readyPattern: /listening on (https?:\/\/[^\s"',]+)/, toUrl: (m) => m[1]!.replace(/\/$/, ''),
    cleanupDirs: o.root ? [confDir] : [confDir, root],
  });
}

/** Starts CNCF Distribution (`docker-registry serve config.yml`, Debian's registry:2 build) on 127.0.0.1:0.
 *  It logs `listening on 127.0.0.1:PORT` (the bound port) on stderr. */
export async function startDistribution(o: {
  root?: string; deleteEnabled?: boolean; extraYaml?: string;
  /** Replaces the filesystem driver entry under `storage:` (indented lines, e.g. an `  s3:` block). */
  storageYaml?: string;
  /** Added to the environment; an undefined value removes the variable (e.g. AWS_CA_BUNDLE for its s3 driver). */
  env?: NodeJS.ProcessEnv;
} = {}): Promise<ServerProcess> {
  const confDir = await mkdtemp(join(tmpdir(), 'distribution-conf-'));
  const root = o.root ?? await mkdtemp(join(tmpdir(), 'distribution-data-'));
  const file = join(confDir, 'config.yml');
  await writeFile(file, [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    ...(o.storageYaml ? [o.storageYaml] : ['  filesystem:', `    rootdirectory: ${JSON.stringify(resolve(root))}`]),
    '  delete:',
    `    enabled: ${o.deleteEnabled ?? true}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    '  addr: 127.0.0.1:0',
    '  secret: berth-interop-test-secret',
    ...(o.extraYaml ? [o.extraYaml] : []),   // more top-level sections (e.g. auth:)
    '',
  ].join('\n'));
  return spawnServer({
    cmd: 'docker-registry', args: ['serve', file], what: 'docker-registry', root,
    env: o.env,
    readyPattern: /listening on (127\.0\.0\.1:\d+)/, toUrl: (m) => `http://${m[1]}`,
    cleanupDirs: o.root ? [confDir] : [confDir, root],
  });
}
