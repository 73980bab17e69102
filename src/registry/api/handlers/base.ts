// GET /v2/ — API version check (spec: "Determining support", end-1). Auth happens in the gateway.
import type { Ctx } from '../context.js';
import { JSON_TYPE } from '../headers.js';

export async function getBase(ctx: Ctx): Promise<void> {
  ctx.res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Content-Length': '2' });
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : '{}');
}
