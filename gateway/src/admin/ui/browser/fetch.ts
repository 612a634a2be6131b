namespace Dashboard {
  export class HttpError extends Error {
    constructor(readonly status: number) {
      super(status === 404 ? 'not available (404)' : 'HTTP ' + status);
    }
  }

  /**
   * GETs one of the gateway's JSON endpoints. A 503 is an answer, not a
   * failure: the gateway says in its body why it can't do better right now.
   */
  export function getJson<T>(url: string): Promise<T> {
    return fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store' }).then((res) => {
      if (!res.ok && res.status !== 503) throw new HttpError(res.status);
      return res.json() as Promise<T>;
    });
  }
}
