// TLS material for the gateway: loads the PEM certificate chain and key (and the CAs client certificates are
// verified against), checks that they belong together, and swaps them into attached servers on reload (SIGHUP,
// or the files changing) without dropping connections; the cipher policy and the client-certificate modes.
// It never generates certificates and never listens; server.ts owns the socket.
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { basename, dirname } from 'node:path';
import * as tls from 'node:tls';
import type * as https from 'node:https';
import { cipherString } from '../config/cipher-suites.js';
import type { ClientAuthMode } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { pemCertificates } from '../util/tls-cas.js';

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
  /** Go or OpenSSL names (config/cipher-suites.ts); default [] = TLS 1.3 + Mozilla "intermediate" (forward-secret AEAD). */
  ciphersuites?: readonly string[];
  /** PEM files of the CAs that client certificates are verified against (re-read with the pair). Default none. */
  clientcas?: readonly string[];
  /** Distribution's client-certificate modes; default none (no certificate asked for). */
  clientauth?: ClientAuthMode;
  log: Logger;
  /** Quiet period after a file event before reloading. Default 250 ms. */
  debounceMs?: number;
}

export interface TlsManager {
  /** The current cert/key/minVersion, as tls.createSecureContext and server.setSecureContext take them. */
  secureContextOptions(): tls.SecureContextOptions;
  /** Options for https.createServer: the secure context options, ALPN http/1.1 and the client-certificate request. */
  serverOptions(): https.ServerOptions;
  /**
   * Enforces `clientauth` on a server created with serverOptions() (the modes Node's options cannot say: a
   * certificate required but not verified, verified only if given): such connections are closed right after the
   * handshake, before any request is read.
   */
  enforceClientAuth(server: tls.Server): void;
  /** The subject CN of the client certificate `socket` presented, when it was verified against `clientcas`. */
  clientCertUser(socket: unknown): string | undefined;
  /** Servers that reload() updates with setSecureContext. Detached when they close. */
  attach(server: tls.Server): void;
  /**
   * Re-reads the pair and the client CAs and, if they are valid, applies them to every attached server; open
   * connections keep the context they were accepted with. On failure the old material stays in
   * place, the error is logged, and the promise rejects with a TlsError.
   */
  reload(): Promise<void>;
  /** Reloads (debounced) when any of the files, or the directory entry holding it, changes. Idempotent. */
  watch(): void;
  /** Stops watching and pending reloads. Idempotent; attached servers keep their last context. */
  close(): void;
}

interface Material { cert: Buffer; key: Buffer; leaf: X509Certificate; ca?: Buffer[] }

const MIN_VERSION: Record<MinimumTls, tls.SecureVersion> = { 'tls1.2': 'TLSv1.2', 'tls1.3': 'TLSv1.3' };

/** Loads and checks the pair synchronously (startup). Throws TlsError naming the file at fault. */
export function createTlsManager(opts: TlsManagerOptions): TlsManager {
  const minVersion = MIN_VERSION[opts.minimumtls ?? 'tls1.2'];
  if (!minVersion) throw new TypeError(`minimumtls must be tls1.2 or tls1.3, got ${String(opts.minimumtls)}`);
  const log = opts.log.child({ module: 'tls' });
  const debounceMs = opts.debounceMs ?? 250;
  const servers = new Set<tls.Server>();
  const ciphers = cipherString(opts.ciphersuites ?? []);
  const clientcas = opts.clientcas ?? [];
  const clientauth: ClientAuthMode = opts.clientauth ?? 'none';
  let current = validate(opts, readSync(opts.certificate), readSync(opts.key), minVersion, ciphers,
    clientcas.map((f) => readSync(f)));
  let watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let reloading: Promise<void> = Promise.resolve();
  let closed = false;

  const secureContextOptions = (): tls.SecureContextOptions =>
    ({ cert: current.cert, key: current.key, minVersion, ciphers, ...(current.ca ? { ca: current.ca } : {}) });

  const apply = async (onlyIfChanged: boolean): Promise<void> => {
    const [cert, key, ...ca] = await Promise.all([readAsync(opts.certificate), readAsync(opts.key), ...clientcas.map(readAsync)]);
    if (onlyIfChanged && cert.equals(current.cert) && key.equals(current.key)
      && ca.every((c, i) => current.ca?.[i]?.equals(c))) return;
    const next = validate(opts, cert, key, minVersion, ciphers, ca);
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
    serverOptions: () => ({
      ...secureContextOptions(), ALPNProtocols: ['http/1.1'],
      requestCert: clientauth !== 'none',
      rejectUnauthorized: clientauth === 'require-and-verify-client-cert',
    }),
    enforceClientAuth(server) {
      if (clientauth !== 'require-any-client-cert' && clientauth !== 'verify-client-cert-if-given') return;
      server.on('secureConnection', (s: tls.TLSSocket) => {
        const given = Object.keys(s.getPeerCertificate() ?? {}).length > 0;
        const refuse = clientauth === 'require-any-client-cert' ? !given : given && !s.authorized;
        if (!refuse) return;
        log.info({ remoteAddress: s.remoteAddress, clientauth, reason: given ? String(s.authorizationError) : 'no client certificate' },
          'tls client certificate refused');
        s.destroy();
      });
    },
    clientCertUser(socket) {
      if (clientcas.length === 0 || !(socket instanceof tls.TLSSocket) || !socket.authorized) return undefined;
      const cn = socket.getPeerCertificate()?.subject?.CN;
      const name = Array.isArray(cn) ? cn[0] : cn;
      return typeof name === 'string' && name !== '' ? name : undefined;
    },
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
      for (const f of [opts.certificate, opts.key, ...clientcas]) {
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

function validate(opts: TlsManagerOptions, cert: Buffer, key: Buffer, minVersion: tls.SecureVersion, ciphers: string,
  ca: Buffer[]): Material {
  ca.forEach((pem, i) => {
    const file = opts.clientcas![i]!;
    const blocks = pemCertificates(pem.toString('latin1'));
    try {
      if (blocks.length === 0) throw new Error('no PEM certificate');
      for (const b of blocks) new X509Certificate(b);
    } catch (err) {
      throw new TlsError('BERTH_TLS_CERT_INVALID', file, `tls: no valid PEM CA certificate in ${file} (tls.clientcas)`, { cause: err });
    }
  });
  const blocks = pemCertificates(cert.toString('latin1'));
  if (blocks.length === 0) {
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
    tls.createSecureContext({ cert, key, minVersion, ciphers, ...(ca.length ? { ca } : {}) });
  } catch (err) {
    throw new TlsError('BERTH_TLS_CERT_INVALID', opts.certificate,
      `tls: OpenSSL rejected ${opts.certificate} with ${opts.key}: ${(err as Error).message}`, { cause: err });
  }
  return { cert, key, leaf, ...(ca.length ? { ca } : {}) };
}
