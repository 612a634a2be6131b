import { randomUUID } from 'node:crypto';

/** A client's id is kept when it is a sane token, so it can't inject into logs or headers. */
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The X-Request-Id to use: the caller's if sane, else a new UUID. */
export function requestIdFrom(given: string | undefined): string {
  return given && SAFE_ID.test(given) ? given : randomUUID();
}
