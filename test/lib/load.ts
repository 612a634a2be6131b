import { Agent, request } from 'undici';

/** One request of a load loop. */
export interface Sample {
  /** Epoch ms when it was sent. */
  at: number;
  ms: number;
  status: number;
  instance: string | null;
  error: string | null;
  /** For a failing status: the error body's code and message, when it is one of ours. */
  reason?: string;
}

/** `upstream_unreachable: could not get an answer… (reset)` from an error body; '' from anything else. */
function reasonOf(text: string): string {
  try {
    const b = JSON.parse(text) as { error?: unknown; message?: unknown };
    return typeof b.error === 'string' ? `${b.error}: ${String(b.message)}` : '';
  } catch {
    return '';
  }
}

export interface LoadOptions {
  url: string;
  /** Requests per second, sent at a constant rate whatever the latency (open loop). */
  rps: number;
  /** Hard upper bound on how long the loop runs. */
  maxDurationMs: number;
  timeoutMs?: number;
  method?: string;
  ok?: (status: number) => boolean;
}

export interface Summary {
  requests: number;
  failures: number;
  p50: number;
  p99: number;
  max: number;
  byInstance: Record<string, number>;
  errors: Record<string, number>;
}

/**
 * Steady traffic for fault tests and the chaos run: requests go out on a
 * fixed schedule, each one's status, latency and serving instance recorded.
 * Bounded by maxDurationMs even if nobody calls stop().
 */
export class LoadLoop {
  readonly samples: Sample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #hardStop: NodeJS.Timeout | undefined;
  #pending = new Set<Promise<void>>();
  #agent = new Agent({ keepAliveTimeout: 10_000, connections: 256 });
  #startedAt = 0;
  #sent = 0;

  constructor(readonly opts: LoadOptions) {}

  start(): this {
    this.#startedAt = Date.now();
    this.#timer = setInterval(() => this.#tick(), 2);
    this.#hardStop = setTimeout(() => void this.stop(), this.opts.maxDurationMs);
    return this;
  }

  #tick(): void {
    const due = Math.floor(((Date.now() - this.#startedAt) * this.opts.rps) / 1000);
    while (this.#sent < due) {
      this.#sent++;
      const p = this.#one().finally(() => this.#pending.delete(p));
      this.#pending.add(p);
    }
  }

  async #one(): Promise<void> {
    const at = Date.now();
    const t0 = performance.now();
    const sample: Sample = { at, ms: 0, status: 0, instance: null, error: null };
    try {
      const res = await request(this.opts.url, {
        method: (this.opts.method ?? 'GET') as 'GET',
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
      });
      const text = await res.body.text();
      sample.status = res.statusCode;
      if (this.isFailure(sample)) sample.reason = reasonOf(text);
      const inst = res.headers['x-instance-id'] ?? res.headers['x-upstream-instance'];
      sample.instance = (Array.isArray(inst) ? inst[0] : inst) ?? null;
    } catch (err) {
      const e = err as { code?: string; name?: string; message?: string };
      sample.error = e.code ?? e.name ?? String(err);
    }
    sample.ms = performance.now() - t0;
    this.samples.push(sample);
  }

  /** Stops sending and waits for requests in flight. */
  async stop(): Promise<Summary> {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#hardStop) clearTimeout(this.#hardStop);
    this.#timer = undefined;
    await Promise.all([...this.#pending]);
    await this.#agent.close().catch(() => undefined);
    return this.summary();
  }

  isFailure(s: Sample): boolean {
    return s.error !== null || !(this.opts.ok ?? ((st) => st === 200))(s.status);
  }

  failures(from = 0, to = Infinity): Sample[] {
    return this.samples.filter((s) => s.at >= from && s.at < to && this.isFailure(s));
  }

  summary(from = 0, to = Infinity): Summary {
    return summarize(this.samples.filter((s) => s.at >= from && s.at < to), (s) => this.isFailure(s));
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

function summarize(samples: Sample[], isFailure: (s: Sample) => boolean): Summary {
  const lat = samples.map((s) => s.ms).sort((a, b) => a - b);
  const byInstance: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let failures = 0;
  for (const s of samples) {
    if (s.instance) byInstance[s.instance] = (byInstance[s.instance] ?? 0) + 1;
    if (isFailure(s)) {
      failures++;
      const k = s.error ?? (s.reason ? `HTTP ${s.status} ${s.reason}` : `HTTP ${s.status}`);
      errors[k] = (errors[k] ?? 0) + 1;
    }
  }
  return {
    requests: samples.length,
    failures,
    p50: Math.round(percentile(lat, 50) * 10) / 10,
    p99: Math.round(percentile(lat, 99) * 10) / 10,
    max: Math.round((lat.at(-1) ?? 0) * 10) / 10,
    byInstance,
    errors,
  };
}
