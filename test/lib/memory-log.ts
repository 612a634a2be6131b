import { pino } from 'pino';

/** A pino logger that keeps its lines in memory, for asserting what was logged. */
export function memoryLog() {
  const lines: Array<{ msg: string; level: number; [k: string]: unknown }> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines, has: (re: RegExp) => lines.some((l) => re.test(l.msg)) };
}

/** Polls `fn` every 5 ms until it is truthy; fails after `ms`. */
export async function until<T>(what: string, fn: () => T | undefined | false, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}
