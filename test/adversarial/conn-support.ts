// Helpers for the connection-level adversarial tests (conn-*, body-*, headers-*): a real berth from startServer
// on 127.0.0.1:0 (htpasswd alice when asked), and raw sockets that send what a hostile or broken client sends
// and record what came back and when the server closed. Every wait is bounded (test/support/wait.ts).
import * as net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { loadConfigFromString } from '../../src/config/load.js';
import type { RegistryConfig } from '../../src/config/schema.js';
import type { Logger } from '../../src/log/logger.js';
import type { RegistryApp } from '../../src/registry/api/app.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/gateway/server.js';
import { captureLog, type CapturedLog } from '../support/tls-certs.js';
import { nextEvent, waitUntil } from '../support/wait.js';

export type T = { after(fn: () => unknown): void };
export const USER = 'alice';
export const PASSWORD = 'correct horse battery staple';
export const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

export interface Berth { server: RunningServer; port: number; url: string; cap: CapturedLog; dir: string }

/** startServer with `yaml` added to listen 127.0.0.1:0 and filesystem storage in a temp dir; htpasswd alice when auth. */
export async function startBerth(t: T, yaml = '', o: {
  auth?: boolean; opts?: ServerOptions; level?: string; storage?: string;
  /** Build the embedded registry from the loaded config (e.g. with a failing storage driver). */
  app?: (registry: RegistryConfig, log: Logger) => Promise<RegistryApp>;
} = {}): Promise<Berth> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-adv-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let text = `listen: 127.0.0.1:0\nregistry: { storage: ${o.storage ?? '{ filesystem: { rootdirectory: data } }'} }\n${yaml}\n`;
  if (o.auth) {
    await writeFile(join(dir, 'htpasswd'), `${USER}:${await bcrypt.hash(PASSWORD, 4)}\n`);
    text += 'auth: { htpasswd: { realm: Test Realm, path: htpasswd } }\n';
  }
  const config = loadConfigFromString(text, join(dir, 'gateway.yml'));
  const cap = captureLog(o.level ?? 'info');
  const registryApp = o.app ? await o.app(config.registry, cap.log) : undefined;
  const server = await startServer(config, cap.log, { drainMs: 1000, ...(registryApp ? { registryApp } : {}), ...o.opts });
  t.after(() => server.close());
  return { server, port: Number(new URL(server.url).port), url: server.url, cap, dir };
}

/** A raw client socket that records what it received and whether (and when) the server ended or closed it. */
export interface RawConn {
  socket: net.Socket;
  /** Everything received so far (latin1). */
  text(): string;
  /** True once the socket closed (either side). */
  closed(): boolean;
  /** ms from connect to close, once closed. */
  closedAfterMs(): number | undefined;
  /** Resolves when the socket has closed, within timeoutMs (default 10 s). */
  waitClosed(what: string, timeoutMs?: number): Promise<void>;
  /** Resolves with one whole response (head + Content-Length body) received after `from` bytes, within timeoutMs. */
  response(from?: number, timeoutMs?: number): Promise<RawResponse>;
}

export interface RawResponse { status: number; headers: Record<string, string>; body: string; end: number }

/** Connects to 127.0.0.1:port (from `localAddress`, e.g. 127.0.0.2 to be another client); resolves once connected
 *  or once the server closed it straight away (a refused connection). Closed in t.after. */
export async function rawConnect(t: T, port: number, localAddress?: string): Promise<RawConn> {
  const socket = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
  t.after(() => socket.destroy());
  const started = Date.now();
  let data = '';
  let closedAt: number | undefined;
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => { data += c; });
  socket.on('error', () => undefined);   // resets from a refusing server are expected; 'close' follows
  socket.on('close', () => { closedAt = Date.now(); });
  await Promise.race([nextEvent(socket, 'connect', 'a raw connection'), nextEvent(socket, 'close', 'a raw connection')])
    .catch(() => undefined);
  const conn: RawConn = {
    socket,
    text: () => data,
    closed: () => closedAt !== undefined,
    closedAfterMs: () => (closedAt === undefined ? undefined : closedAt - started),
    async waitClosed(what, timeoutMs = 10_000) {
      await waitUntil(what, () => closedAt !== undefined, { timeoutMs, detail: () => `received: ${JSON.stringify(data.slice(0, 300))}` });
    },
    async response(from = 0, timeoutMs = 10_000) {
      return waitUntil('a whole HTTP response', () => parseResponse(data, from), {
        timeoutMs, detail: () => `received: ${JSON.stringify(data.slice(from, from + 300))}; closed: ${closedAt !== undefined}`,
      });
    },
  };
  return conn;
}

/** The first whole response in text after `from`, or undefined while it is incomplete. */
export function parseResponse(text: string, from = 0): RawResponse | undefined {
  const headEnd = text.indexOf('\r\n\r\n', from);
  if (headEnd < 0) return undefined;
  const [statusLine, ...lines] = text.slice(from, headEnd).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  const end = headEnd + 4 + length;
  if (text.length < end) return undefined;
  return { status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(headEnd + 4, end), end };
}

/** Resident set size in bytes. */
export const rss = (): number => process.memoryUsage().rss;
