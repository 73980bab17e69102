// Distribution's notification envelope (docs/notifications.md): event and target shapes, the media
// type, and a builder from what a handler knows plus the request. Pure data: no I/O, no queueing.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v2+json';

export type Action = 'push' | 'pull' | 'mount' | 'delete';

export interface EventDescriptor { mediaType?: string; size?: number; digest?: string }

/** What a handler reports: the rest (ids, request, source) is filled in by the listener. */
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

export interface Envelope { events: Event[] }

export interface Source { addr: string; instanceID: string }

const first = (v: string | string[] | undefined): string => (Array.isArray(v) ? v[0] : v) ?? '';

/** Builds one event. `now` is injectable for tests. */
export function buildEvent(action: Action, t: TargetInfo, req: IncomingMessage, source: Source,
  o: { includeReferences: boolean; now?: Date; user?: string }): Event {
  const host = first(req.headers.host);
  const path = t.kind === 'blob' ? 'blobs' : 'manifests';
  const ref = t.digest ?? t.tag;
  const target: Event['target'] = { repository: t.repository };
  if (t.mediaType !== undefined) target.mediaType = t.mediaType;
  if (t.size !== undefined) { target.size = t.size; target.length = t.size; }
  if (t.digest !== undefined) target.digest = t.digest;
  if (ref && host) target.url = `${req.socket && 'encrypted' in req.socket ? 'https' : 'http'}://${host}/v2/${t.repository}/${path}/${ref}`;
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
      id: first(req.headers['x-request-id']) || randomUUID(),
      addr: remoteAddr(req), host, method: req.method ?? '', useragent: first(req.headers['user-agent']),
    },
    actor: o.user ? { name: o.user } : {},
    source,
  };
}

/**
 * Distribution's RemoteAddr: the first X-Forwarded-For entry, else X-Real-IP, when it is an IP address;
 * else the peer as host:port. Behind the gateway these headers are the ones it set (forwarded.ts), so
 * a client cannot choose its own address there.
 */
export function remoteAddr(req: IncomingMessage): string {
  const xff = first(req.headers['x-forwarded-for']).split(',')[0]!.trim();
  if (xff && isIP(xff)) return xff;
  const real = first(req.headers['x-real-ip']).trim();
  if (real && isIP(real)) return real;
  const s = req.socket;
  if (!s?.remoteAddress) return '';
  return s.remoteAddress.includes(':') ? `[${s.remoteAddress}]:${s.remotePort}` : `${s.remoteAddress}:${s.remotePort}`;
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
