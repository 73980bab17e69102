// Runs commands the deployment tests drive (npm, docker-compose, systemd-analyze, an installed `berth`, the built
// CLI with its own environment and stdin): to completion with a deadline, or as a server until its "listening on
// URL" line. Every child is killed by its own PID (SIGKILL) when its deadline passes or the test ends; nothing else.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { waitUntil, withDeadline } from './wait.js';

export interface CommandOptions {
  cwd?: string;
  /** The whole environment (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed (default: no stdin). */
  input?: string;
  timeoutMs?: number;   // default 60 s
}

export interface CommandResult { code: number | null; stdout: string; stderr: string }

/** Runs cmd to completion; a run past its deadline is SIGKILLed and the wait fails with its output. */
export async function runCommand(cmd: string, args: readonly string[], o: CommandOptions = {}): Promise<CommandResult> {
  const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  let stdout = ''; let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  if (o.input !== undefined) child.stdin!.end(o.input);
  const closed = new Promise<number | null>((res, rej) => { child.once('error', rej).once('close', (c) => res(c)); });
  try {
    const code = await withDeadline(closed, o.timeoutMs ?? 60_000, `${cmd} ${args.join(' ')}`, () => `stdout: ${stdout}\nstderr: ${stderr}`);
    return { code, stdout, stderr };
  } finally {
    killIfRunning(child);
  }
}

export interface RunningServer {
  /** The URL of its "listening on URL" line. */
  url: string;
  pid: number;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Sends a signal (default SIGTERM) and waits (deadline timeoutMs) for the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** Starts a berth `serve` (any command printing "listening on URL") and waits for that line (20 s). The caller
 *  passes `after` (t.after) so the process is SIGKILLed when the test ends, whatever happened. */
export async function startServing(cmd: string, args: readonly string[], o: CommandOptions & { after(fn: () => void): void }): Promise<RunningServer> {
  const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  o.after(() => killIfRunning(child));
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  const exited = new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  let spawnError: Error | undefined;
  child.once('error', (e) => { spawnError = e; });
  const m = await waitUntil(`${cmd} ${args.join(' ')} to print its listening line`, () => {
    if (spawnError) throw spawnError;
    if (child.exitCode !== null) throw new Error(`${cmd} exited early with ${child.exitCode}: ${out}`);
    return out.match(/listening on (https?:\/\/[^\s"',]+)/);
  }, { timeoutMs: o.timeoutMs ?? 20_000, detail: () => out });
  return {
    url: m[1]!.replace(/\/$/, ''), pid: child.pid!, output: () => out,
    stop: async (signal = 'SIGTERM', timeoutMs = 15_000) => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
      return withDeadline(exited, timeoutMs, `${cmd} to exit after ${signal}`, () => out);
    },
  };
}

function killIfRunning(child: ChildProcess): void {
  if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
}

/** Whether an executable named `tool` is on PATH. */
export function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').filter(Boolean).some((d) => {
    try { accessSync(join(d, tool), constants.X_OK); return true; } catch { return false; }
  });
}

/** For `test(name, { skip: needs('docker-compose', 'docker-compose') }, …)`: outside CI a missing tool skips with
 *  its name and Debian package; under CI=true nothing skips (the test fails at the first spawn instead). */
export function needs(tool: string, debianPackage: string): string | false {
  if (onPath(tool) || process.env.CI === 'true') return false;
  return `not installed: ${tool} (apt-get install ${debianPackage})`;
}
