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
import { readdir, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

// SOURCE_NOTE: V8 keeps every script's source text in the heap, as one byte per character only when the
// text is all ASCII. Minified and ASCII, the start-up chunks' sources shrink from ~1.3 MB of heap to ~0.35 MB,
// which keeps berth's old generation below 8 MiB: V8's threshold for incremental marking
// (kV8ActivationThreshold). Just above it (8.2-8.6 MiB after each full GC) an upload ran back-to-back
// incremental marking cycles, ~50 full GCs per GiB of chunked upload; below it (7.7 MiB) 7 per 512 MiB
// instead of 23-25 (--trace-gc, chunked upload, TLS + htpasswd). Start time did not measurably change. The margin
// is small: after a skopeo push and pull of a 1 GB image the old generation is back at 7.9-8.1 MiB
// (bench/RESULTS.md, "Below V8's marking threshold").
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
  // Whitespace and syntax only: identifiers keep their names, so stack traces and profiles stay readable
  // (the linked source map maps them back to src/ with --enable-source-maps). See SOURCE_NOTE above.
  minifyWhitespace: true,
  minifySyntax: true,
});

// A non-ASCII character anywhere makes V8 store that whole file's source two bytes per character (SOURCE_NOTE).
for (const f of [`${outdir}/main.js`, ...(await readdir(`${outdir}/chunks`)).filter((n) => n.endsWith('.js')).map((n) => `${outdir}/chunks/${n}`)]) {
  const text = await readFile(f, 'utf8');
  const at = text.search(/[^\x00-\x7f]/);
  if (at >= 0) throw new Error(`${f}: non-ASCII character at offset ${at} (${JSON.stringify(text.slice(Math.max(0, at - 40), at + 20))}): escape it in the source (\\uXXXX)`);
}
