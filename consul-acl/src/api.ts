/** A minimal client for Consul's ACL and agent-token HTTP API (stable since Consul 1.4). */

export class ConsulApiError extends Error {
  override name = 'ConsulApiError';
  constructor(
    readonly status: number,
    readonly body: string,
    readonly what: string,
  ) {
    super(`${what}: HTTP ${status} ${body.trim().slice(0, 300)}`);
  }
  /** Worth retrying while the cluster settles: no leader yet, ACLs still in legacy mode (1.4-1.10), 5xx. */
  get transient(): boolean {
    return this.status >= 500 || /legacy mode|no cluster leader/i.test(this.body);
  }
}

export class ConsulAclApi {
  constructor(
    /** http://host:port */
    readonly base: string,
    readonly token?: string,
    private readonly timeoutMs = 10_000,
  ) {}

  withToken(token: string): ConsulAclApi {
    return new ConsulAclApi(this.base, token, this.timeoutMs);
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const what = `${method} ${this.base}${path}`;
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: { ...(this.token ? { 'X-Consul-Token': this.token } : {}), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      // unreachable agent, refused connection, timeout: transient while the stack starts
      throw new ConsulApiError(599, (err as Error).cause ? String((err as Error).cause) : (err as Error).message, what);
    }
    const text = await res.text();
    if (!res.ok) throw new ConsulApiError(res.status, text, what);
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

export interface AclToken {
  AccessorID: string;
  SecretID?: string;
  Description?: string;
  Policies?: Array<{ ID: string; Name: string }> | null;
}

export interface AclPolicy {
  ID: string;
  Name: string;
  Description?: string;
  Rules?: string;
}
