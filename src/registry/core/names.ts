// Repository name and tag grammar from the OCI distribution spec, compiled once. Validation here is
// also what keeps every storage path inside the root: nothing that fails these reaches paths.ts.
import { NameInvalidError, TagInvalidError } from './errors.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
export const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const NAME_MAX = 255;

export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= NAME_MAX && NAME_RE.test(name);
}

export function assertName(name: string): void {
  if (!isValidName(name)) throw new NameInvalidError(name.length > 300 ? name.slice(0, 300) : name);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function assertTag(tag: string): void {
  if (!TAG_RE.test(tag)) throw new TagInvalidError(tag.length > 200 ? tag.slice(0, 200) : tag);
}
