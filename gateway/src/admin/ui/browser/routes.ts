// Routes declared in tags: each with its services, their shares and live
// rates (a canary is watched here). Hidden while no service declares one.
namespace Dashboard {
  const COLUMNS = ['route', 'service', 'weight', 'share', 'rps', 'strip', 'state'];

  /** A service in a route: one that takes a share, or one that lost the route to another. */
  interface RouteRow {
    service: string;
    lost: boolean;
    live: boolean;
    weight: number | null;
    percent: number;
    strip: string | null;
    reason: string;
  }

  function rowsOf(route: RouteJSON): RouteRow[] {
    const targets = route.targets.map((t) => ({ ...t, lost: false, reason: '' }));
    const losers = route.losers.map((l) => ({ service: l.service, lost: true, live: false, weight: null, percent: 0, strip: null, reason: l.reason }));
    return [...targets, ...losers];
  }

  function stateText(t: RouteRow): string {
    if (t.lost) return 'conflict: lost';
    return t.live ? 'in route' : 'no passing instance';
  }

  function routeRow(body: Node, route: RouteJSON, t: RouteRow, first: boolean): void {
    const row = add(body, h('tr', t.lost || !t.live ? 'ejected' : ''));
    row.dataset.route = route.route;
    row.dataset.service = t.service;
    const rc = add(row, h('td'));
    if (first) add(rc, h('code', null, route.route));
    add(add(row, h('td')), h('code', null, t.service));
    add(row, h('td', 'n', t.lost ? '—' : t.weight === null ? 'rest' : String(t.weight)));
    add(row, h('td', 'n', t.lost ? '0%' : Math.round(t.percent * 10) / 10 + '%'));
    const s = statsFor(t.service);
    add(row, h('td', 'n', fmtRps(s && s.rps)));
    add(row, h('td', null, t.strip || ''));
    const state = add(row, h('td', 'inst-state', stateText(t)));
    if (t.lost) state.title = t.reason;
  }

  function routesTable(root: Node, routes: readonly RouteJSON[]): void {
    const body = table(root, COLUMNS);
    for (const route of routes) rowsOf(route).forEach((t, i) => routeRow(body, route, t, i === 0));
  }

  function rejectedTags(root: Node, tags: readonly RejectedTagJSON[]): void {
    add(root, h('p', 'bad', 'Ignored tags:'));
    const ul = add(root, h('ul', 'rejected'));
    for (const x of tags) add(ul, h('li', null, x.service + ': ' + x.tag + ' — ' + x.reason));
  }

  function hasAny(r: RoutesJSON | null): r is RoutesJSON {
    return !!r && ((r.routes && r.routes.length > 0) || (r.rejectedTags && r.rejectedTags.length > 0) || (r.defaultRouteOff && r.defaultRouteOff.length > 0));
  }

  export function renderRoutes(): void {
    // Optional, unlike the other panels: a page without it still shows the rest.
    const sec = document.getElementById('routes');
    const root = document.getElementById('routes-body');
    const r = st.routes;
    if (!sec || !root) return;
    sec.hidden = !hasAny(r);
    if (!hasAny(r)) return;
    clear(root);
    if (r.routes.length > 0) routesTable(root, r.routes);
    if (r.defaultRouteOff && r.defaultRouteOff.length) add(root, h('p', 'muted', '/<service>/ turned off for: ' + r.defaultRouteOff.join(', ')));
    if (r.rejectedTags && r.rejectedTags.length) rejectedTags(root, r.rejectedTags);
  }
}
