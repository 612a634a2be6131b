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
  const bad = (why: string) => new Error(`"${entry}" ${why}`);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(entry)?.[1]?.toLowerCase() ?? 'http';
  if (scheme !== 'http' && scheme !== 'https') throw new Error(`"${entry}": scheme must be http or https`);
  const rest = entry.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  if (rest.includes('@') || /[/?#]./.test(rest)) throw bad('must be just a host and port');
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(\d{1,5}))?\/?$/i.exec(rest);
  const port = m?.[2] === undefined ? 8500 : Number(m[2]);
  if (!m || port < 1 || port > 65535) throw bad('is not host:port or http://host:port (port 1-65535)');
  const bracketed = m[1]!.toLowerCase();
  const host = bracketed.replace(/^\[(.*)\]$/, '$1');
  return { host, port, secure: scheme === 'https', url: `${scheme}://${bracketed}:${port}` };
}
