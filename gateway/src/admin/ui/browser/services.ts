// One section per service: its live figures, a "why?" button, and a row per
// passing instance with the balancer's view of it.
namespace Dashboard {
  const BAD_ERROR_RATE = 0.05;
  const COLUMNS = ['instance', 'address', 'node', 'rps', 'errors', 'p50', 'p99', 'score', 'state', 'joined'];

  function metric(parent: Node, label: string, value: string, bad?: boolean | null): void {
    const m = add(parent, h('span', 'metric' + (bad ? ' bad' : '')));
    add(m, h('small', null, label + ' '));
    add(m, h('span', null, value));
  }

  function serviceHead(sec: HTMLElement, name: string, count: number, s: ServiceStatsJSON | null): void {
    const head = add(sec, h('h2'));
    const a = add(head, h('a', null, '/' + name + '/'));
    a.href = '/' + encodeURIComponent(name) + '/';
    add(head, h('small', null, ' ' + count + ' passing '));
    const ms = add(head, h('span', 'metrics'));
    metric(ms, 'rps', fmtRps(s && s.rps));
    metric(ms, 'errors', fmtPct(s && s.errorRate), s && s.errorRate > BAD_ERROR_RATE);
    metric(ms, 'p50', fmtMs(s && s.p50Ms));
    metric(ms, 'p99', fmtMs(s && s.p99Ms));
    const btn = add(head, h('button', 'why-btn', 'why?'));
    btn.type = 'button';
    btn.dataset.service = name;
    btn.addEventListener('click', () => openWhy(name));
  }

  /** The balancer's cost (lower gets the next request), its inputs in the tooltip. */
  function scoreCell(row: HTMLElement, lb: BalancerJSON | undefined): void {
    const cell = add(row, h('td', 'n score' + (lb && lb.failures > 0 ? ' bad' : ''), lb && num(lb.score) ? String(lb.score) : '\u2014'));
    if (!lb) return;
    const latency = lb.latencyMs === null ? 'not known yet' : fmtMs(lb.latencyMs);
    const failed = lb.failures > 0 ? ', last ' + lb.failures + ' failed' : '';
    cell.title = 'balancer cost (lower gets the request): latency ' + latency + ', ' + lb.inflight + ' in flight' + failed;
  }

  function stateCell(row: HTMLElement, i: InstanceJSON, ejectedMs: number, now: number): void {
    const ejected = ejectedMs > now;
    const cell = add(row, h('td', 'inst-state', ejected ? 'ejected \u00b7 back in ' + span((ejectedMs - now) / 1000) : 'routable'));
    if (i.ejectedUntil) cell.title = 'ejected until ' + i.ejectedUntil;
  }

  function instanceRow(body: Node, i: InstanceJSON, s: ServiceStatsJSON | null, now: number): void {
    const is = instStats(s, i.key);
    const ejectedMs = i.ejectedUntil ? Date.parse(i.ejectedUntil) : 0;
    const row = add(body, h('tr', ejectedMs > now ? 'ejected' : ''));
    row.dataset.instance = i.id;
    add(add(row, h('td')), h('code', null, i.id));
    add(row, h('td', null, i.address + ':' + i.port));
    add(row, h('td', null, i.node));
    add(row, h('td', 'n', fmtRps(is && is.rps)));
    add(row, h('td', 'n' + (is && is.errorRate > BAD_ERROR_RATE ? ' bad' : ''), fmtPct(is && is.errorRate)));
    add(row, h('td', 'n', fmtMs(is && is.p50Ms)));
    add(row, h('td', 'n', fmtMs(is && is.p99Ms)));
    scoreCell(row, is ? is.balancer : undefined);
    stateCell(row, i, ejectedMs, now);
    const joined = add(row, h('td', null, ago(i.joinedAt)));
    if (i.joinedAt) joined.title = i.joinedAt;
  }

  function serviceSection(root: Node, name: string, list: readonly InstanceJSON[], now: number): void {
    const s = statsFor(name);
    const sec = add(root, h('section', 'service'));
    sec.dataset.service = name;
    serviceHead(sec, name, list.length, s);
    const body = table(sec, COLUMNS);
    if (list.length === 0) {
      const td = add(add(body, h('tr')), h('td', 'none', 'no passing instance (requests get 503)'));
      td.colSpan = COLUMNS.length;
    }
    for (const i of list) instanceRow(body, i, s, now);
  }

  export function renderServices(): void {
    const root = $('services');
    const d = st.dash;
    if (!d) return;
    clear(root);
    const services = d.services || {};
    const names = Object.keys(services);
    if (names.length === 0) {
      add(root, h('p', 'empty', 'No routable services in Consul yet.'));
      return;
    }
    const now = Date.now();
    for (const name of names) serviceSection(root, name, services[name] || [], now);
  }
}
