// Distribution's notification envelope (docs/notifications.md): event and target shapes, the media
// type, and a builder from what a repository call knows plus the request's facts (util/request-context.ts).
// Pure data: no I/O, no queueing.
import { randomUUID } from 'node:crypto';
import type { RequestFacts } from '../../util/request-context.js';

export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v2+json';

export type Action = 'push' | 'pull' | 'mount' | 'delete';

export interface EventDescriptor { mediaType?: string; size?: number; digest?: string }

/** What a repository call reports: the rest (ids, request, source) is filled in by the listener. */
export interface TargetInfo {
  repository: string;
  kind: 'manifest' | 'blob' | 'tag';
  mediaType?: string;
  size?: number;
  digest?: string;
  tag?: string;
  fromRepository?: string;
  /** Manifest bytes (push), parsed for `references` only when events.includereferences is on. */
  manifest?: Buffer;
}

export interface Event {
  id: string;
  timestamp: string;
  action: Action;
  target: EventDescriptor & {
    length?: number; repository: string; url?: string; tag?: string; fromRepository?: string;
    references?: EventDescriptor[];
  };
  request: { id: string; addr: string; host: string; method: string; useragent: string };
  actor: { name?: string };
  source: { addr: string; instanceID: string };
}

export interface Source { addr: string; instanceID: string }

/** Builds one event from what the repository call knew and the request's facts (undefined outside a
 *  request: then the request fields are empty). `now` is injectable for tests. */
export function buildEvent(action: Action, t: TargetInfo, facts: RequestFacts | undefined, source: Source,
  o: { includeReferences: boolean; now?: Date }): Event {
  const host = facts?.host ?? '';
  const path = t.kind === 'blob' ? 'blobs' : 'manifests';
  const ref = t.digest ?? t.tag;
  const target: Event['target'] = { repository: t.repository };
  if (t.mediaType !== undefined) target.mediaType = t.mediaType;
  if (t.size !== undefined) { target.size = t.size; target.length = t.size; }
  if (t.digest !== undefined) target.digest = t.digest;
  if (ref && host) target.url = `${facts!.scheme}://${host}/v2/${t.repository}/${path}/${ref}`;
  if (t.tag !== undefined) target.tag = t.tag;
  if (t.fromRepository !== undefined) target.fromRepository = t.fromRepository;
  if (o.includeReferences && t.manifest) {
    const refs = references(t.manifest);
    if (refs.length) target.references = refs;
  }
  return {
    id: randomUUID(),
    timestamp: (o.now ?? new Date()).toISOString(),
    action,
    target,
    request: {
      id: facts?.reqId ?? randomUUID(),
      addr: facts?.addr ?? '', host, method: facts?.method ?? '', useragent: facts?.useragent ?? '',
    },
    actor: facts?.user ? { name: facts.user } : {},
    source,
  };
}

/** config, layers, manifests and subject of a manifest (Distribution's Manifest.References()). */
function references(bytes: Buffer): EventDescriptor[] {
  try {
    const j = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    const out: EventDescriptor[] = [];
    const add = (d: unknown) => {
      if (d && typeof d === 'object') {
        const { mediaType, size, digest } = d as EventDescriptor;
        out.push({ mediaType, size, digest });
      }
    };
    add(j.config);
    for (const k of ['layers', 'manifests'] as const) if (Array.isArray(j[k])) (j[k] as unknown[]).forEach(add);
    return out;
  } catch {
    return [];
  }
}
