// The token endpoint's HTTP side (auth.issuer.path, default /auth/token): Distribution's token.md GET
// (?service=&scope=…&offline_token=true, Basic credentials or a client certificate, else anonymous) and oauth.md's
// POST (a form: grant_type=password with username/password, or grant_type=refresh_token; client_id, service,
// scope, access_type=offline). It authenticates with the gateway's Basic access controller (the same failure
// budgets, checks and cache as /v2), hands the request to the issuer (auth/token/issuer.ts), and writes the JSON
// answer; refusals go through the one OCI error writer (401 with the Basic challenge, 400, 429). It never logs
// credentials or tokens.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ChallengeError, TooManyAttemptsError, type AccessController } from '../auth/access.js';
import { TokenRequestError, type TokenIssuer, type TokenResponse } from '../auth/token/issuer.js';
import type { Logger } from '../log/logger.js';
import { OciError } from '../registry/api/errors.js';
import { sendError } from '../registry/api/send-error.js';

/** Largest POST form read (a refresh token, a password, a few scopes fit in far less). */
const MAX_FORM_BYTES = 64 * 1024;

export interface TokenEndpointOptions {
  /** The path served (after urls.prefix is stripped), e.g. /auth/token. */
  path: string;
  issuer: TokenIssuer;
  /** The Basic authenticator (htpasswd); absent: only client certificates and anonymous requests. */
  basic?: AccessController;
  /** `Basic realm="…"` for a 401 when there is no Basic authenticator to name its own. */
  basicChallenge: string;
}

export interface TokenEndpointContext {
  log: Logger;
  /** The client's address for failure budgets (behind a trusted proxy: the forwarded client). */
  addr?: string;
  /** The subject CN of a verified client certificate. */
  certUser?: string;
  /** Adds fields to the request's log line. */
  note(fields: Record<string, unknown>): void;
}

export interface TokenEndpoint {
  readonly path: string;
  handle(req: IncomingMessage, res: ServerResponse, ctx: TokenEndpointContext): Promise<void>;
}

export function createTokenEndpoint(o: TokenEndpointOptions): TokenEndpoint {
  /** Basic credentials (a header value) → the user, through the access controller with no access items. */
  const checkBasic = async (req: IncomingMessage, authorization: string, ctx: TokenEndpointContext): Promise<string> => {
    if (!o.basic) throw new ChallengeError(o.basicChallenge, 'invalid');
    const probe = { headers: { authorization }, socket: req.socket, method: req.method, url: req.url } as unknown as IncomingMessage;
    const grant = await o.basic.authorize(probe, [], { addr: ctx.addr });
    if (grant.user === null) throw new ChallengeError(o.basicChallenge, 'invalid');
    return grant.user;
  };

  const get = async (req: IncomingMessage, ctx: TokenEndpointContext): Promise<TokenResponse> => {
    const q = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
    const header = req.headers.authorization;
    let user: string | null = null;
    let via: 'password' | 'certificate' | 'anonymous' = 'anonymous';
    if (header !== undefined && header !== '') {
      user = await checkBasic(req, header, ctx);
      via = 'password';
    } else if (ctx.certUser !== undefined) {
      user = ctx.certUser;
      via = 'certificate';
    }
    ctx.note({ ...(user !== null ? { user } : {}), grant: via });
    return o.issuer.issue({
      user, via, service: q.get('service') ?? undefined, scope: q.getAll('scope'),
      offline: q.get('offline_token') === 'true',
    });
  };

  const post = async (req: IncomingMessage, ctx: TokenEndpointContext): Promise<TokenResponse> => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      throw new TokenRequestError(400, 'invalid_request', 'expected an application/x-www-form-urlencoded body');
    }
    const form = new URLSearchParams(await readForm(req));
    const grantType = form.get('grant_type');
    const common = { service: form.get('service') ?? undefined, scope: form.getAll('scope'), offline: form.get('access_type') === 'offline' };
    if (!form.get('client_id')) throw new TokenRequestError(400, 'invalid_request', 'missing client_id');
    if (grantType === 'password') {
      const username = form.get('username');
      const password = form.get('password');
      if (!username || password === null) throw new TokenRequestError(400, 'invalid_request', 'missing username or password');
      const user = await checkBasic(req, `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`, ctx);
      ctx.note({ user, grant: 'password' });
      return o.issuer.issue({ ...common, user, via: 'password' });
    }
    if (grantType === 'refresh_token') {
      const refresh = form.get('refresh_token');
      if (!refresh) throw new TokenRequestError(400, 'invalid_request', 'missing refresh_token');
      const r = await o.issuer.refresh(refresh, common);
      ctx.note({ grant: 'refresh_token' });
      return r;
    }
    throw new TokenRequestError(400, 'unsupported_grant_type', `grant_type ${JSON.stringify(grantType ?? '')} is not supported (password, refresh_token)`);
  };

  return {
    path: o.path,
    async handle(req, res, ctx) {
      try {
        let answer: TokenResponse;
        if (req.method === 'GET' || req.method === 'HEAD') answer = await get(req, ctx);
        else if (req.method === 'POST') answer = await post(req, ctx);
        else {
          throw new OciError('UNSUPPORTED', { reason: 'the token endpoint takes GET and POST' }, 405, { Allow: 'GET, HEAD, POST' });
        }
        const body = JSON.stringify(answer);
        res.writeHead(200, {
          'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)),
          'Cache-Control': 'no-store', Pragma: 'no-cache',
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      } catch (err) {
        sendError(req, res, toTokenError(err, ctx, o.basicChallenge), ctx.log);
      }
    },
  };
}

/** Refusals as OCI errors: 401 with a Basic challenge (wrong or missing credentials), 429, 400 with the OAuth2
 *  error code (RFC 6749 §5.2) in the detail. Anything else is a 500 from sendError. */
function toTokenError(err: unknown, ctx: TokenEndpointContext, basicChallenge: string): unknown {
  if (err instanceof ChallengeError) {
    ctx.note({ auth: err.reason, ...(err.user ? { user: err.user } : {}) });
    const challenge = err.wwwAuthenticate.startsWith('Basic') ? err.wwwAuthenticate : basicChallenge;
    return new OciError('UNAUTHORIZED', undefined, 401, { 'WWW-Authenticate': challenge });
  }
  if (err instanceof TooManyAttemptsError) {
    ctx.note({ auth: `throttled-${err.reason}`, ...(err.user ? { user: err.user } : {}) });
    return new OciError('TOOMANYREQUESTS', undefined, 429, { 'Retry-After': String(err.retryAfterSeconds) });
  }
  if (err instanceof TokenRequestError) {
    ctx.note({ tokenError: err.error });
    return new OciError(err.status === 401 ? 'UNAUTHORIZED' : 'UNSUPPORTED', { error: err.error, error_description: err.description },
      err.status, err.status === 401 ? { 'WWW-Authenticate': basicChallenge } : undefined, `${err.error}: ${err.description}`);
  }
  return err;
}

/** The POST body, at most MAX_FORM_BYTES (more: 400, the rest unread and the connection closed by sendError). */
async function readForm(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_FORM_BYTES) throw new TokenRequestError(400, 'invalid_request', `form larger than ${MAX_FORM_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new TokenRequestError(400, 'invalid_request', `form larger than ${MAX_FORM_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
