// TLS material for the gateway: loads the PEM certificate chain and key, checks that they belong
// together, and swaps them into attached servers on reload (SIGHUP, or the files changing) without
// dropping connections. It never generates certificates and never listens; server.ts owns the socket.
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { basename, dirname } from 'node:path';
import * as tls from 'node:tls';
import type * as https from 'node:https';
import type { Logger } from '../log/logger.js';

export type MinimumTls = 'tls1.2' | 'tls1.3';

export type TlsErrorCode =
  | 'BERTH_TLS_FILE_NOT_FOUND'   // ENOENT
  | 'BERTH_TLS_FILE_UNREADABLE'  // EACCES, EISDIR, …
  | 'BERTH_TLS_CERT_INVALID'     // no PEM certificate, or one that does not parse
  | 'BERTH_TLS_KEY_INVALID'      // not a PEM private key (or an encrypted one)
  | 'BERTH_TLS_KEY_MISMATCH';    // the key is not the leaf certificate's key

/** Any problem with the configured certificate or key. `file` is the absolute path at fault. */
export class TlsError extends Error {
  constructor(readonly code: TlsErrorCode, readonly file: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsError';
  }
}

export interface TlsManagerOptions {
  certificate: string;   // PEM: leaf first, then intermediates
  key: string;           // PEM private key (unencrypted)
  minimumtls?: MinimumTls;   // default tls1.2; TLS 1.3 is always on
  log: Logger;
  /** Quiet period after a file event before reloading. Default 250 ms. */
  debounceMs?: number;
}

export interface TlsManager {
  /** The current cert/key/minVersion, as tls.createSecureContext and server.setSecureContext take them. */
  secureContextOptions(): tls.SecureContextOptions;
  /** Options for https.createServer: the secure context options plus ALPN http/1.1. */
  serverOptions(): https.ServerOptions;
  /** Servers that reload() updates with setSecureContext. Detached when they close. */
  attach(server: tls.Server): void;
  /**
   * Re-reads both files and, if they are valid, applies them to every attached server; open
   * connections keep the context they were accepted with. On failure the old material stays in
   * place, the error is logged, and the promise rejects with a TlsError.
   */
  reload(): Promise<void>;
  /** Reloads (debounced) when either file, or the directory entry holding it, changes. Idempotent. */
  watch(): void;
  /** Stops watching and pending reloads. Idempotent; attached servers keep their last context. */
  close(): void;
}

interface Material { cert: Buffer; key: Buffer; leaf: X509Certificate }

const MIN_VERSION: Record<MinimumTls, tls.SecureVersion> = { 'tls1.2': 'TLSv1.2', 'tls1.3': 'TLSv1.3' };
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Loads and checks the pair synchronously (startup). Throws TlsError naming the file at fault. */
export function createTlsManager(opts: TlsManagerOptions): TlsManager {
  const minVersion = MIN_VERSION[opts.minimumtls ?? 'tls1.2'];
  if (!minVersion) throw new TypeError(`minimumtls must be tls1.2 or tls1.3, got ${String(opts.minimumtls)}`);
  const log = opts.log.child({ module: 'tls' });
  const debounceMs = opts.debounceMs ?? 250;
  const servers = new Set<tls.Server>();
  let current = validate(opts, readSync(opts.certificate), readSync(opts.key), minVersion);
  let watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let reloading: Promise<void> = Promise.resolve();
  let closed = false;

  const secureContextOptions = (): tls.SecureContextOptions => ({ cert: current.cert, key: current.key, minVersion });

  const apply = async (onlyIfChanged: boolean): Promise<void> => {
    const [cert, key] = await Promise.all([readAsync(opts.certificate), readAsync(opts.key)]);
    if (onlyIfChanged && cert.equals(current.cert) && key.equals(current.key)) return;
    const next = validate(opts, cert, key, minVersion);
    current = next;
    for (const s of servers) s.setSecureContext(secureContextOptions());
    log.info({ certificate: opts.certificate, subject: next.leaf.subject, validTo: next.leaf.validTo,
      fingerprint256: next.leaf.fingerprint256 }, 'tls certificate loaded');
  };

  // Reloads run one after another, so a slow read cannot overwrite newer material.
  const run = (onlyIfChanged: boolean): Promise<void> => {
    const p = reloading.then(() => apply(onlyIfChanged));
    reloading = p.catch(() => undefined);
    return p.catch((err: unknown) => {
      log.error({ err, certificate: opts.certificate, key: opts.key }, 'tls reload failed; keeping the previous certificate');
      throw err;
    });
  };

  const schedule = (): void => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => { run(true).catch(() => undefined); }, debounceMs);
    timer.unref();
  };

  return {
    secureContextOptions,
    serverOptions: () => ({ ...secureContextOptions(), ALPNProtocols: ['http/1.1'] }),
    attach(server) {
      servers.add(server);
      server.once('close', () => servers.delete(server));
    },
    reload: () => run(false),
    watch() {
      if (closed || watchers.length > 0) return;
      // Watch the directories, not the files: editors and cert tooling (certbot, Kubernetes secret
      // volumes) replace files by rename or by swapping a symlink, which a file watch misses.
      const byDir = new Map<string, Set<string>>();
      for (const f of [opts.certificate, opts.key]) {
        const d = dirname(f);
        if (!byDir.has(d)) byDir.set(d, new Set());
        byDir.get(d)!.add(basename(f));
      }
      for (const dir of byDir.keys()) {
        try {
          const w = watch(dir, { persistent: false }, () => schedule());
          w.on('error', (err) => log.warn({ err, dir }, 'tls directory watch failed'));
          watchers.push(w);
        } catch (err) {
          log.warn({ err, dir }, 'cannot watch tls directory; reload with SIGHUP');
        }
      }
    },
    close() {
      closed = true;
      clearTimeout(timer);
      for (const w of watchers) w.close();
      watchers = [];
    },
  };
}

function readSync(file: string): Buffer {
  try { return readFileSync(file); } catch (err) { throw readError(file, err); }
}

async function readAsync(file: string): Promise<Buffer> {
  try { return await readFile(file); } catch (err) { throw readError(file, err); }
}

function readError(file: string, err: unknown): TlsError {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT'
    ? new TlsError('BERTH_TLS_FILE_NOT_FOUND', file, `tls: file not found: ${file}`, { cause: err })
    : new TlsError('BERTH_TLS_FILE_UNREADABLE', file, `tls: cannot read ${file}: ${code ?? String(err)}`, { cause: err });
}

function validate(opts: TlsManagerOptions, cert: Buffer, key: Buffer, minVersion: tls.SecureVersion): Material {
  const blocks = cert.toString('latin1').match(PEM_CERT);
  if (!blocks) {
    throw new TlsError('BERTH_TLS_CERT_INVALID', opts.certificate, `tls: no PEM certificate in ${opts.certificate}`);
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(blocks[0]);
    for (const b of blocks.slice(1)) new X509Certificate(b);
  } catch (err) {
    throw new TlsError('BERTH_TLS_CERT_INVALID', opts.certificate, `tls: invalid certificate in ${opts.certificate}`, { cause: err });
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (err) {
    throw new TlsError('BERTH_TLS_KEY_INVALID', opts.key,
      `tls: ${opts.key} is not an unencrypted PEM private key`, { cause: err });
  }
  if (!leaf.checkPrivateKey(keyObject)) {
    throw new TlsError('BERTH_TLS_KEY_MISMATCH', opts.key,
      `tls: key ${opts.key} does not match certificate ${opts.certificate} (${leaf.subject.replace(/\n/g, ', ')})`);
  }
  try {
    tls.createSecureContext({ cert, key, minVersion });
  } catch (err) {
    throw new TlsError('BERTH_TLS_CERT_INVALID', opts.certificate,
      `tls: OpenSSL rejected ${opts.certificate} with ${opts.key}: ${(err as Error).message}`, { cause: err });
  }
  return { cert, key, leaf };
}
