// Storage driver parameters, Distribution style (`parameters map[string]interface{}`): each driver
// describes what it accepts as a table (name, kind, default, bounds); this file checks a plain map
// against such a table, for the driver (parseParameters) and for config (checkParameter, one value).
// It knows no driver and must not import config: config reads the tables through factory.ts.
import { isAbsolute } from 'node:path';
import { StorageParameterError } from './base.js';

/** `path`: a filesystem path (config resolves a relative one against the config file's directory). */
export type ParameterKind = 'string' | 'path' | 'int' | 'bool';
export type ParameterValue = string | number | boolean;

/** One parameter of a driver, as it appears under `registry.storage.<driver>`. */
export interface ParameterSpec {
  readonly name: string;
  readonly kind: ParameterKind;
  /**
   * The value when the parameter is absent; none → it stays absent. A relative `path` default is
   * relative to the config file: config resolves it, and without a config file (createDriver called
   * from code) the parameter is required.
   */
  readonly default?: ParameterValue;
  /** Bounds of an `int`, inclusive. */
  readonly min?: number;
  readonly max?: number;
}

type KindValue<K extends ParameterKind> = K extends 'int' ? number : K extends 'bool' ? boolean : string;

/** What parseParameters returns for a table declared `as const`: each name typed by its kind. */
export type ParsedParameters<S extends readonly ParameterSpec[]> = {
  readonly [P in S[number] as P['name']]: P extends { default: ParameterValue } ? KindValue<P['kind']> : KindValue<P['kind']> | undefined;
};

/** strconv.ParseBool's spellings: Distribution's drivers parse boolean parameters given as strings with it. */
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);
/** A decimal integer in a string (REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS=50); Go's base prefixes are not accepted. */
const INTEGER = /^[+-]?\d+$/;

/**
 * One value against its spec: the typed value, or what was wanted (for "expected <wanted>, found …").
 * Strings holding an integer or a boolean are accepted as Distribution's parsers accept them, since
 * parameters may come from environment variables. `path` values are not resolved here.
 */
export function checkParameter(spec: ParameterSpec, value: unknown): { value: ParameterValue } | { wanted: string } {
  switch (spec.kind) {
    case 'bool':
      if (typeof value === 'boolean') return { value };
      if (typeof value === 'string' && TRUE.has(value)) return { value: true };
      if (typeof value === 'string' && FALSE.has(value)) return { value: false };
      return { wanted: 'true or false' };
    case 'int': {
      const n = typeof value === 'string' && INTEGER.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) return { wanted: 'an integer' };
      if (spec.min !== undefined && n < spec.min) return { wanted: `an integer ≥ ${spec.min}` };
      if (spec.max !== undefined && n > spec.max) return { wanted: `an integer ≤ ${spec.max}` };
      return { value: n };
    }
    case 'path':
      return typeof value === 'string' && value !== '' ? { value } : { wanted: 'a non-empty path' };
    case 'string':
      return typeof value === 'string' ? { value } : { wanted: 'a string' };
  }
}

/**
 * Checks a driver's parameter map against its table and returns the typed values, defaults applied.
 * Throws StorageParameterError naming the config key (`registry.storage.<driver>.<name>`) at the first
 * problem: an unknown key, a value of the wrong kind or out of bounds, a relative path. Keys whose
 * value is undefined count as absent.
 */
export function parseParameters<const S extends readonly ParameterSpec[]>(
  driver: string, specs: S, params: Readonly<Record<string, unknown>> | undefined,
): ParsedParameters<S> {
  const section = `registry.storage.${driver}`;
  if (params !== undefined && (params === null || typeof params !== 'object' || Array.isArray(params))) {
    throw new StorageParameterError(section, `expected a mapping of parameters, found ${show(params)}`, driver);
  }
  const given = params ?? {};
  for (const key of Object.keys(given)) {
    if (given[key] === undefined || specs.some((s) => s.name === key)) continue;
    throw new StorageParameterError(`${section}.${key}`, specs.length
      ? `unknown parameter, expected one of: ${specs.map((s) => s.name).join(', ')}`
      : 'unknown parameter, the driver takes none', driver);
  }
  const out: Record<string, ParameterValue> = {};
  for (const spec of specs) {
    const key = `${section}.${spec.name}`;
    const raw = Object.hasOwn(given, spec.name) ? given[spec.name] : undefined;
    if (raw === undefined) {
      if (spec.default === undefined) continue;
      if (spec.kind === 'path' && !isAbsolute(String(spec.default))) {
        throw new StorageParameterError(key, `required (the default ${spec.default} is relative to a config file)`, driver);
      }
      out[spec.name] = spec.default;
      continue;
    }
    const r = checkParameter(spec, raw);
    if ('wanted' in r) throw new StorageParameterError(key, `expected ${r.wanted}, found ${show(raw)}`, driver);
    if (spec.kind === 'path' && !isAbsolute(r.value as string)) {
      throw new StorageParameterError(key, `expected an absolute path, found ${show(raw)}`, driver);
    }
    out[spec.name] = r.value;
  }
  return out as ParsedParameters<S>;
}

function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
}
