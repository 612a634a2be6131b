import type { RouteTable } from '@stack/shared';

const esc = (s: string | number) =>
  String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page a person sees at GET /: what the gateway routes, with links to try it. */
export function renderPage(table: RouteTable, status: { synced: boolean; degraded: boolean; reasons: string[] }): string {
  const rows = [...table.services]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, list]) => {
      const insts = list.length
        ? list.map((i) => `<li><code>${esc(i.id)}</code> ${esc(i.address)}:${esc(i.port)}</li>`).join('')
        : '<li class="none">no passing instance (requests get 503)</li>';
      return `<section><h2><a href="/${esc(name)}/">/${esc(name)}/</a> <small>${list.length} passing</small></h2><ul>${insts}</ul></section>`;
    })
    .join('\n');
  const state = !status.synced
    ? 'waiting for the first sync with Consul'
    : status.degraded
      ? `degraded: ${status.reasons.map(esc).join('; ')} (routing on the last good table)`
      : 'in sync with Consul';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gateway</title>
<meta http-equiv="refresh" content="2">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
code{font-size:13px}small{color:#666;font-weight:normal}.none{color:#a00}.state{padding:.5rem;background:#f4f4f4}
h2{font-size:1.1rem;margin:1.2rem 0 .3rem}ul{margin:0}</style></head>
<body><h1>API gateway</h1>
<p class="state">Discovery: ${state}. Table version ${table.version}, last changed ${esc(table.changedAt?.toISOString() ?? 'never')}.</p>
${rows || '<p>No routable services in Consul yet.</p>'}
<p><small>JSON: <a href="/_gateway/services">/_gateway/services</a> · <a href="/_gateway/health">/_gateway/health</a>. This page reloads every 2 s.</small></p>
</body></html>`;
}
