import type { Router } from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { clientGone } from './client-abort.js';
import { HttpError, intParam, readSmallBody, sendJson, sleep } from './http.js';
import type { AppState } from './middleware.js';

const MAX_DELAY_MS = 60_000;

/** Test-only behaviour of `/`: answer normally, fail with 500, or answer slowly. */
export class FaultState {
  mode: 'ok' | 'fail' | 'slow' = 'ok';
  delayMs = 0;

  toJSON() {
    return { mode: this.mode, delayMs: this.delayMs };
  }
}

/** Applied to every `/` request; a no-op unless a fault mode was set. */
export async function applyFault(state: FaultState, ctx: Context): Promise<void> {
  if (state.mode === 'fail') throw new HttpError('fault_injected', 'fault mode "fail" is on');
  if (state.mode === 'slow') await sleep(state.delayMs, clientGone(ctx.res));
}

const modeSchema = z.enum(['ok', 'fail', 'slow']);

/** Registered only when ENABLE_FAULTS=true, so in production these paths 404. */
export function faultRoutes(router: Router<AppState>, state: FaultState, answer: (ctx: Context) => void): void {
  const delay = async (ctx: Context) => {
    const ms = intParam(ctx.query.ms, 'ms', 0, MAX_DELAY_MS, 1_000);
    const gone = clientGone(ctx.res);
    await sleep(ms, gone);
    if (gone.aborted) ctx.status = 499; // nobody to answer; shows as such in the request log
    else answer(ctx);
  };
  const status = (ctx: Context) => {
    const code = intParam(ctx.query.code, 'code', 200, 599);
    sendJson(ctx, code, { status: code, requestId: ctx.state.requestId });
  };
  router.get('/fault/delay', delay).post('/fault/delay', delay);
  router.get('/fault/status', status).post('/fault/status', status);
  router.get('/fault/mode', (ctx) => sendJson(ctx, 200, state));
  router.post('/fault/mode', async (ctx) => {
    const input: Record<string, unknown> = { ...ctx.query, ...(await readJsonObject(ctx)) };
    const mode = modeSchema.safeParse(input.mode);
    if (!mode.success) throw new HttpError('invalid_parameter', 'mode must be "ok", "fail" or "slow"');
    state.mode = mode.data;
    state.delayMs = mode.data === 'slow' ? intParam(input.delayMs, 'delayMs', 0, MAX_DELAY_MS, 1_000) : 0;
    ctx.state.log.info({ fault: state.toJSON() }, 'fault mode set');
    sendJson(ctx, 200, state);
  });
}

async function readJsonObject(ctx: Context): Promise<Record<string, unknown>> {
  const text = (await readSmallBody(ctx, 16 * 1024)).trim();
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError('invalid_body', 'body must be a JSON object');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HttpError('invalid_body', 'body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}
