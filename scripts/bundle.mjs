#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js, from `tsc`) into dist/bundle/: main.js plus chunks for
// what is loaded on demand (the cert, gc and htpasswd commands, undici, prom-client, selfsigned).
//
// Why: Node 20 loads ES modules with one asynchronous file read, resolve and compile step per file, and
// `serve` used to load ~180 of them (81 of berth's, 72 of yaml's, pino's). Measured start to "listening"
// (TLS + htpasswd, 6 runs each, interleaved): 197-227 ms from dist/src, 151-159 ms from the bundle, of which
// ~70 ms is Node's own start (`node -e 0`). Node 20 has no module compile cache (module.enableCompileCache
// is Node 22), so one file is the lever left.
//
// Only what `serve` loads at start goes into the bundle: berth's own modules, yaml and pino (pure JS, no
// file lookups at run time: berth never uses pino transports, the one part of pino that resolves files).
// Every other dependency stays outside, loaded from node_modules on demand exactly as from dist/src:
// native addons (@node-rs/bcrypt picks its .node file per platform), packages reached through
// createRequire (http-proxy-3, apache-md5, redis: opaque to esbuild by design), and the lazily imported
// ones (undici, prom-client, selfsigned, bcryptjs): bundling them changed their module shape or
// behaviour (selfsigned's CommonJS export, undici's webhook delivery: the e2e tests caught both) and
// buys nothing, since they are not on the start path.
// The version printed by the CLI comes from ../../package.json relative to dist/bundle/main.js (see
// version() in src/cli/main.ts).
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/bundle`;
const BUNDLED = new Set(['yaml', 'pino']);
const { dependencies } = JSON.parse(await readFile(`${root}package.json`, 'utf8'));
const external = Object.keys(dependencies).filter((name) => !BUNDLED.has(name));
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: { main: `${root}dist/src/cli/main.js` },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.18',
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: 'linked',
  external,
  // CommonJS packages inside an ES module bundle call require() for Node built-ins.
  banner: { js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
