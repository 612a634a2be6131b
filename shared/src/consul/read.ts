import { EventEmitter } from 'node:events';
import { classifyConsulError, type ConsulError } from './errors.js';
import { readMeta, type QueryMeta, type Response } from './meta.js';
import type { Call, ConsulPool } from './pool.js';

// A plain read answers in milliseconds; past this the agent is stuck.
const READ_TIMEOUT_MS = 5_000;

/** A failed read, with what it means for discovery. */
export class ReadError extends Error {
  constructor(
    readonly consul: ConsulError,
    readonly agent: string,
  ) {
    super(consul.message);
  }
}

/**
 * One non-blocking read from the preferred agent: ?stale by default (any
 * server answers), or `fresh` (no ?stale: the leader answers, so a removal a
 * stale answer suggested can be confirmed). A failure reaching the agent moves
 * the pool to the next one, as a blocking query's would.
 */
export async function readOnce<T>(pool: ConsulPool, call: Call, fresh = false): Promise<{ body: T; meta: QueryMeta }> {
  const { client, index, address } = pool.current();
  try {
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
    const [res, body] = (await call(client, { ...(fresh ? {} : { stale: true }), timeout: READ_TIMEOUT_MS, ctx })) as [Response, T];
    return { body, meta: readMeta(res, address.url, fresh) };
  } catch (err) {
    const e = classifyConsulError(err);
    if (e.failover) pool.reportFailure(index);
    throw new ReadError(e, address.url);
  }
}
