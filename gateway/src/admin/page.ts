import { escapeHtml, type ConsulState, type Instance, type RouteTable } from '@stack/shared';
import type { ConsulServersState } from './consul-servers.js';
import type { GatewayEvent } from './events.js';

/**
 * Everything on the dashboard comes from Consul or from what clients send,
 * so the page allows nothing inline: its script and style are files the
 * gateway serves itself, and it only talks to the gateway.
 */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy': PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** Strict HTML escape: every character that can open or close markup or an attribute. */
const esc = escapeHtml;

export interface DashboardInstance {
  id: string;
  /** instance.key (node/id): what live stats are keyed by. */
  key: string;
  address: string;
  port: number;
  node: string;
  ejectedUntil?: string;
  /** When the gateway first saw it passing (ISO); null when unknown. */
  joinedAt: string | null;
}

/** GET /_gateway/dashboard: the snapshot the page starts from and refreshes. */
export interface DashboardView {
  at: string;
  synced: boolean;
  version: number;
  changedAt: string | null;
  services: Record<string, DashboardInstance[]>;
  consul: ConsulState;
  servers: ConsulServersState | null;
  /** Tells one gateway process's event ids from the next one's. */
  boot: string | null;
}

export interface DashboardInputs {
  table: RouteTable;
  synced: boolean;
  consul: ConsulState;
  ejectedUntil: (i: Instance) => number | null;
  joinedAt: (service: string, i: Instance) => string | null;
  servers: ConsulServersState | null;
  boot: string | null;
  now?: number;
}

export function dashboardView(x: DashboardInputs): DashboardView {
  const services: Record<string, DashboardInstance[]> = {};
  for (const [name, list] of [...x.table.services].sort(([a], [b]) => a.localeCompare(b)))
    services[name] = list.map((i) => {
      const until = x.ejectedUntil(i);
      return {
        id: i.id,
        key: i.key,
        address: i.address,
        port: i.port,
        node: i.node,
        ...(until ? { ejectedUntil: new Date(until).toISOString() } : {}),
        joinedAt: x.joinedAt(name, i),
      };
    });
  return {
    at: new Date(x.now ?? Date.now()).toISOString(),
    synced: x.synced,
    version: x.table.version,
    changedAt: x.table.changedAt?.toISOString() ?? null,
    services,
    consul: x.consul,
    servers: x.servers,
    boot: x.boot,
  };
}

function discoveryLine(v: DashboardView): string {
  if (!v.synced) return 'waiting for the first sync with Consul';
  if (v.consul.degraded) return `degraded: ${v.consul.reasons.map(esc).join('; ')} (routing on the last good table)`;
  return 'in sync with Consul';
}

function servicesHtml(v: DashboardView): string {
  const names = Object.keys(v.services);
  if (names.length === 0) return '<p class="empty">No routable services in Consul yet.</p>';
  return names
    .map((name) => {
      const list = v.services[name]!;
      const rows = list.length
        ? list
            .map(
              (i) =>
                `<tr data-instance="${esc(i.id)}"><td><code>${esc(i.id)}</code></td><td>${esc(i.address)}:${esc(i.port)}</td>` +
                `<td>${esc(i.node)}</td><td>${i.ejectedUntil ? `ejected until ${esc(i.ejectedUntil)}` : 'routable'}</td>` +
                `<td>${esc(i.joinedAt ?? '')}</td></tr>`,
            )
            .join('')
        : '<tr><td class="none" colspan="5">no passing instance (requests get 503)</td></tr>';
      return (
        `<section class="service" data-service="${esc(name)}"><h2><a href="/${esc(name)}/">/${esc(name)}/</a> ` +
        `<small>${list.length} passing</small></h2><table><thead><tr><th>instance</th><th>address</th><th>node</th>` +
        `<th>state</th><th>joined</th></tr></thead><tbody>${rows}</tbody></table></section>`
      );
    })
    .join('\n');
}

function consulHtml(v: DashboardView): string {
  const c = v.consul;
  const s = v.servers;
  const servers = s?.peers.length
    ? `<ul>${s.peers.map((p) => `<li><code>${esc(p)}</code>${p === s.leader ? ' <strong>leader</strong>' : ''}</li>`).join('')}</ul>`
    : '<p>servers not read yet</p>';
  return (
    `<dl><dt>agent</dt><dd>${esc(c.agent ?? 'none yet')} (${c.reachable ? 'reachable' : 'unreachable'})</dd>` +
    `<dt>last contact</dt><dd>${esc(c.lastContact ?? 'never')}</dd>` +
    `<dt>leader known</dt><dd>${c.knownLeader ? 'yes' : 'no'}</dd>` +
    `<dt>degraded</dt><dd>${c.degraded ? `yes: ${c.reasons.map(esc).join('; ')}` : 'no'}</dd></dl>${servers}`
  );
}

function timelineHtml(events: readonly GatewayEvent[]): string {
  return [...events]
    .reverse()
    .map(
      (e) =>
        `<li data-type="${esc(e.type)}"><time>${esc(e.at)}</time> <b>${esc(e.type)}</b> ` +
        `${e.service ? `<code>${esc(e.service)}</code> ` : ''}${e.instance ? `<code>${esc(e.instance)}</code> ` : ''}${esc(e.detail)}</li>`,
    )
    .join('');
}

/**
 * The dashboard at GET /. The HTML already shows the snapshot (readable
 * without JavaScript); /_gateway/ui/dashboard.js then keeps it live: the
 * snapshot and /_gateway/stats polled every second, events over SSE.
 */
export function renderPage(v: DashboardView, events: readonly GatewayEvent[] = []): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gateway</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/_gateway/ui/dashboard.css">
<script src="/_gateway/ui/dashboard.js" defer></script></head>
<body>
<header><h1>API gateway</h1><span id="live" class="live off">static</span></header>
<p id="state" class="state">Discovery: ${discoveryLine(v)}. Table version ${v.version}, last changed ${esc(v.changedAt ?? 'never')}.</p>
<main>
<section id="routes" class="panel routes" hidden><h2>Routes</h2><div id="routes-body"></div></section>
<div id="services">${servicesHtml(v)}</div>
<aside>
<section id="consul" class="panel"><h2>Consul</h2><div id="consul-body">${consulHtml(v)}</div></section>
<section id="why" class="panel" hidden><h2>Why <span id="why-service"></span></h2><div id="why-body"></div></section>
<section id="timeline" class="panel"><h2>Timeline</h2><ol id="events">${timelineHtml(events)}</ol></section>
</aside>
</main>
<noscript><p>Live updates need JavaScript; reload the page to refresh.</p></noscript>
<footer><small>JSON: <a href="/_gateway/dashboard">/_gateway/dashboard</a> · <a href="/_gateway/services">/_gateway/services</a> ·
<a href="/_gateway/health">/_gateway/health</a> · <a href="/_gateway/consul">/_gateway/consul</a> ·
<a href="/_gateway/events?format=json">/_gateway/events</a> · <a href="/_gateway/stats">/_gateway/stats</a></small></footer>
</body></html>`;
}
