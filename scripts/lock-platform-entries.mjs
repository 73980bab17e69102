#!/usr/bin/env node
// The package registry reachable here serves only @node-rs/bcrypt's linux-x64-gnu binary, so
// `npm install` writes a lockfile without the other platforms' optional entries and `npm ci`
// then refuses it ("Missing: @node-rs/bcrypt-darwin-x64@ from lock file"). This adds the
// missing entries with their os/cpu/libc so npm ci skips them on non-matching platforms.
// Run after any `npm install` that rewrites package-lock.json.
import { readFileSync, writeFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const bcrypt = lock.packages['node_modules/@node-rs/bcrypt'];
if (!bcrypt) process.exit(0);
for (const name of Object.keys(bcrypt.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  const m = /bcrypt-(\w+)-(\w+?)(?:-(gnu|musl|gnueabihf|msvc|eabi))?$/.exec(name);
  if (!m) throw new Error(`unexpected platform package ${name}`);
  const [, os, cpu, abi] = m;
  const entry = { version: bcrypt.optionalDependencies[name], cpu: [cpu], license: 'MIT', optional: true, os: [os] };
  if (os === 'linux') entry.libc = [abi === 'musl' ? 'musl' : 'glibc'];
  lock.packages[key] = entry;
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
writeFileSync('package-lock.json', JSON.stringify(lock, null, 2) + '\n');
