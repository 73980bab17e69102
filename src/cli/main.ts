#!/usr/bin/env node
// The berth command: argv → loadConfig → start. `serve [--config FILE] [--dev-cert]`, `check-config [FILE]`,
// `healthcheck`, `cert`, `htpasswd`, `gc`, --help, --version (no FILE: config-path.ts finds it as registry:2).
// It owns process concerns (exit codes, signals: TERM/INT stop, HUP reloads TLS; stdout/stderr); nothing imports it.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, formatProblems, type ConfigProblem } from '../config/config-error.js';
import { loadConfig, problemAt } from '../config/load.js';
import { createLogger, silentLogger } from '../log/logger.js';
import { startServer } from '../gateway/server.js';
import { requestIdMixin } from '../util/request-context.js';
import { createTlsManager, TlsError } from '../gateway/tls.js';
import { tuneGc } from './gc-tuning.js';
import { startIdleCollector } from './idle-gc.js';
import { preflight } from './preflight.js';
import { findConfig, type ConfigLocation } from './config-path.js';
import { dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

const USAGE = `Usage:
  berth serve [--config FILE | FILE] [--dev-cert]
                                  start the registry (config: see "Without --config" below); --dev-cert: when
                                  the tls: files are missing, generate a development certificate there first
  berth check-config [FILE]       validate a config file and exit (0 ok, 1 invalid)
  berth healthcheck [--config FILE] [--timeout D]
                                  probe the configured listener's /v2/ (0 healthy, 1 not; see berth healthcheck --help)
  berth cert [--hostname H]...    write a development TLS certificate to ./certs (see berth cert --help)
  berth htpasswd add|remove|verify USER --file PATH   manage an htpasswd file (bcrypt)
  berth access check USER REPOSITORY ACTION [--config FILE]   explain an access-rules decision
  berth gc [--config FILE] [--dry-run] [--delete-untagged] [--force]   delete unreferenced blobs (see berth gc --help)

Signals (serve): SIGTERM/SIGINT drain and exit; SIGHUP reloads the TLS certificate and key, token auth's keys
  and the access rules' groups file.
  berth --help | --version
  registry:2's forms work too: \`berth serve FILE\` and a bare \`berth FILE.yml\` (= serve FILE).

Without --config (check-config: without FILE), serve, check-config, healthcheck and gc read, as registry:2:
$REGISTRY_CONFIGURATION_PATH, else /etc/docker/registry/config.yml if it exists, else ./gateway.yml.
FILE is berth's gateway.yml, or a Distribution config.yml (a top-level "version: 0.1"): its keys are
mapped to berth's, and the ones berth does not honour are listed in one warning.
Environment overrides (applied before validation): REGISTRY_<PATH> as Distribution applies them
(e.g. REGISTRY_STORAGE_DELETE_ENABLED=true, REGISTRY_HTTP_ADDR=:5000, REGISTRY_AUTH=htpasswd);
BERTH_LOG_LEVEL sets log.level.`;

/** Exit codes: 0 ok, 1 invalid config or failed start, 2 usage error. */
async function main(argv: string[]): Promise<number> {
  // Subcommands with their own options parse their own argv; each loads its module only when run.
  if (argv[0] === 'cert') {
    const { runCertCommand } = await import('./cert-command.js');
    return runCertCommand(argv.slice(1), { stdout: process.stdout, stderr: process.stderr });
  }
  if (argv[0] === 'gc') {
    const { runGcCommand } = await import('./gc-command.js');
    return runGcCommand(argv.slice(1), { stdout: process.stdout, stderr: process.stderr });
  }
  if (argv[0] === 'healthcheck') {
    const { runHealthcheckCommand } = await import('./healthcheck-command.js');
    return runHealthcheckCommand(argv.slice(1), { stdout: process.stdout, stderr: process.stderr });
  }
  if (argv[0] === 'access') {
    const { runAccessCommand } = await import('./access-command.js');
    return runAccessCommand(argv.slice(1), { stdout: process.stdout, stderr: process.stderr });
  }
  if (argv[0] === 'htpasswd') {
    const { runHtpasswdCommand } = await import('./htpasswd-command.js');
    return runHtpasswdCommand(argv.slice(1), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        'dev-cert': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  if (values.version) { process.stdout.write(`${version()}\n`); return 0; }

  // registry:2's argument forms, so a compose file or unit written for it runs unchanged: Distribution's
  // `registry serve FILE` (FILE positional), and the image entrypoint's bare `FILE.yml` meaning `serve FILE`.
  if (positionals.length === 1 && /\.ya?ml$/i.test(positionals[0]!)) positionals.unshift('serve');
  const [command, ...rest] = positionals;
  switch (command) {
    case 'serve':
      if (rest.length > 1 || (rest.length === 1 && values.config !== undefined)) return usage(`unexpected argument: ${rest.at(-1)}`);
      return serve(configLocation(rest[0] ?? values.config), values['dev-cert'] ?? false);
    case 'check-config': {
      if (rest.length > 1 || (rest.length === 1 && values.config !== undefined)) return usage('check-config takes one FILE');
      return checkConfig(configLocation(rest[0] ?? values.config).file);
    }
    case undefined:
      return usage('missing command');
    default:
      return usage(`unknown command: ${command}`);
  }
}

/** The config file: the one named, else registry:2's discovery (config-path.ts). */
function configLocation(argument: string | undefined): ConfigLocation {
  return findConfig({ argument, env: process.env, exists: existsSync });
}

function usage(problem: string): number {
  process.stderr.write(`berth: ${problem}\n\n${USAGE}\n`);
  return 2;
}

async function checkConfig(file: string): Promise<number> {
  const warnings: string[] = [];
  let config: Config;
  try {
    config = await loadConfig(file, { warnings });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stdout.write(`${err.message}\n`);
    return 1;
  }
  const { problems, warnings: fileWarnings } = await preflight(config);
  for (const w of [...warnings, ...fileWarnings]) process.stderr.write(`warning: ${w}\n`);
  if (problems.length) {
    process.stdout.write(`${formatProblems(file, problems)}\n`);
    return 1;
  }
  const tlsProblem = checkTlsFiles(config);
  if (tlsProblem) {
    process.stdout.write(`${formatProblems(file, [tlsProblem])}\n`);
    return 1;
  }
  process.stdout.write(`${file}: ok\n`);
  return 0;
}

/** The `tls:` pair loaded as `serve` loads it (files readable, PEM valid, the key the certificate's), so a
 *  config that passes check-config does not fail at start on its certificate. */
function checkTlsFiles(config: Config): ConfigProblem | undefined {
  if (!config.tls) return undefined;
  const { certificate, key, minimumtls, ciphersuites, clientcas, clientauth } = config.tls;
  try {
    createTlsManager({ certificate, key, minimumtls, ciphersuites, clientcas, clientauth, log: silentLogger() }).close();
    return undefined;
  } catch (err) {
    if (!(err instanceof TlsError)) throw err;
    const p = tlsProblem(config, err);
    return err.code === 'BERTH_TLS_FILE_NOT_FOUND' && isDevCertPair(config.tls)
      ? { ...p, message: `${p.message} (serve --dev-cert creates a development pair)` } : p;
  }
}

/** A TLS load failure named by its key (tls.certificate or tls.key; config.yml: http.tls.…) at its line:col. */
function tlsProblem(config: Config, err: TlsError): ConfigProblem {
  const ca = config.tls?.clientcas.indexOf(err.file) ?? -1;
  const key = ca >= 0 ? `tls.clientcas.${ca}`
    : err.file === config.tls?.key && err.file !== config.tls?.certificate ? 'tls.key' : 'tls.certificate';
  return problemAt(config, key, err.message.replace(/^tls: /, ''));
}

async function serve(where: ConfigLocation, devCert: boolean): Promise<number> {
  const { file } = where;
  const gc = tuneGc();
  const warnings: string[] = [];
  let config;
  try {
    config = await loadConfig(file, { warnings });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Without --config, say how the file was chosen (a missing ./gateway.yml is then no mystery).
    const how = where.source === 'argument' ? '' : `(config file ${where.file}: ${where.reason})\n`;
    process.stderr.write(`berth: invalid configuration\n${err.message}\n${how}`);
    return 1;
  }
  const { level, formatter, fields } = config.log;
  const log = createLogger({ level, formatter, fields, mixin: requestIdMixin });   // JSON (or logstash, text) lines on stdout
  log.info({ config: config.source || file, from: where.reason }, 'configuration read');
  for (const w of warnings) log.warn(w);
  // What would fail later with a bare errno (the Debian sample's htpasswd path is a directory: EISDIR):
  // named by its config key and path, as check-config names it.
  const { problems } = await preflight(config);   // its warnings: the htpasswd module logs them itself
  if (problems.length) {
    process.stderr.write(`berth: cannot start\n${formatProblems(file, problems)}\n`);
    return 1;
  }

  let server;
  try {
    if (devCert) await devCertificate(config, log);
    server = await startServer(config, log, { uploadTraffic: gc, drainMs: config.proxy.draintimeout });
  } catch (err) {
    // One plain line; the stack only at debug (a start failure is the operator's to fix, not a crash).
    log.debug({ err }, 'failed to start');
    process.stderr.write(`berth: cannot start: ${startFailure(config, file, err)}\n`);
    return 1;
  }
  // The one plain line people and tests wait for (contracts.md item 6); the JSON log says 'listening'.
  process.stdout.write(`berth ${version()} listening on ${server.url}\n`);
  log.debug({ gc: gc.mode }, 'v8 gc tuning applied');
  // After the ready line: getting gc() (a new vm context) takes ~1 ms.
  const idleGc = startIdleCollector({
    onCollect: (before, after, ms) => log.debug({ heapBefore: before, heapAfter: after, ms: Math.round(ms * 10) / 10 }, 'idle: heap collected'),
  });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {   // a second signal: stop waiting for the drain
        log.warn({ signal }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      idleGc.stop();
      log.info({ signal }, 'shutting down');
      server.close().then(() => resolve(0), (err) => {
        log.error({ err }, 'error while shutting down');
        resolve(1);
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {
      log.info({ signal: 'SIGHUP' }, 'reloading: tls certificate and key, token keys, access groups file');
      server.reload().catch(() => undefined);   // the tls module logs the failure and keeps the old pair
    });
  });
}

/** A start failure as one line, naming the config key and the address or path where berth knows them. */
function startFailure(config: Config, file: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.syscall === 'listen') {
    const why = e.code === 'EADDRINUSE' ? 'address already in use'
      : e.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)'
        : e.code === 'EADDRNOTAVAIL' ? 'address not available on this host' : (e.code ?? e.message);
    const { host, port } = config.listen;
    return formatProblems(file, [problemAt(config, 'listen', `cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${why}`)]);
  }
  if (err instanceof TlsError) return formatProblems(file, [tlsProblem(config, err)]);
  return e instanceof Error ? e.message : String(err);
}

/**
 * `serve --dev-cert`: with a tls: section whose files are named domain.crt/domain.key in one
 * directory and do not exist yet, write a development CA + certificate there (ensureDevCert logs
 * that it did). Without the flag berth never generates certificates.
 */
async function devCertificate(config: Config, log: Logger): Promise<void> {
  const tls = config.tls;
  if (!tls) throw new Error('--dev-cert needs a tls: section in the config');
  if (!isDevCertPair(tls)) {
    throw new Error('--dev-cert needs tls.certificate and tls.key to be DIR/domain.crt and DIR/domain.key');
  }
  const dir = dirname(tls.certificate);
  const host = config.listen.host;
  const names = host === '0.0.0.0' || host === '::' ? [] : [host];
  const { ensureDevCert } = await import('./cert-command.js');
  const r = await ensureDevCert(dir, names, log);
  if (!r.created) log.info({ certificate: r.certificate }, '--dev-cert: using the existing certificate');
}

/** Whether the pair is named as --dev-cert makes it: DIR/domain.crt and DIR/domain.key. */
function isDevCertPair(tls: { certificate: string; key: string }): boolean {
  const dir = dirname(tls.certificate);
  return tls.certificate === join(dir, 'domain.crt') && tls.key === join(dir, 'domain.key');
}

function version(): string {
  // dist/src/cli/main.js and src/cli/main.ts both sit below the package root.
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8'));
      if (pkg.name === 'berth') return pkg.version as string;
    } catch { /* try the next */ }
  }
  return 'unknown';
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    // An unexpected failure: one line, the stack only when asked for (BERTH_LOG_LEVEL=debug or trace).
    const verbose = /^(debug|trace)$/.test(process.env.BERTH_LOG_LEVEL ?? '');
    process.stderr.write(`berth: ${(verbose ? err?.stack : err?.message) ?? err}\n`);
    process.exit(1);
  },
);
