export interface ConsulAddress {
  host: string;
  port: number;
  secure: boolean;
  /** Normalised form for logs: http://host:port */
  url: string;
}

/**
 * Parses CONSUL_HTTP_ADDR: `host:port`, `http://host:port` or `https://host:port`,
 * or a comma-separated list of those (agents to fail over between, in order).
 * Throws with a message naming the bad entry.
 */
export function parseConsulAddrs(value: string): ConsulAddress[] {
  const entries = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) throw new Error('expected host:port or http://host:port');
  return entries.map(parseOne);
}

function parseOne(entry: string): ConsulAddress {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(entry) ? entry : `http://${entry}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`"${entry}" is not host:port or http://host:port`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`"${entry}": scheme must be http or https`);
  }
  if (!url.hostname || url.username || url.password || (url.pathname !== '/' && url.pathname !== '')) {
    throw new Error(`"${entry}" must be just a host and port`);
  }
  const secure = url.protocol === 'https:';
  const port = url.port ? Number(url.port) : 8500;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port, secure, url: `${url.protocol}//${url.host.includes(':') ? url.host : `${url.host}:${port}`}` };
}
