// The Consul panel: the agent the gateway talks to, and the servers with their raft leader.
namespace Dashboard {
  function dt(dl: Node, k: string, v: string, cls?: string): HTMLElement {
    add(dl, h('dt', null, k));
    return add(dl, h('dd', cls || null, v));
  }

  function agentList(root: Node, c: Partial<ConsulJSON>): void {
    const dl = add(root, h('dl'));
    dt(dl, 'agent', (c.agent || 'none yet') + (c.reachable ? ' \u00b7 reachable' : ' \u00b7 unreachable'), c.reachable ? 'ok' : 'bad');
    const lc = dt(dl, 'last contact', c.lastContact ? ago(c.lastContact) + ' (' + (c.lastContactMs || 0) + ' ms stale)' : 'never');
    if (c.lastContact) lc.title = c.lastContact;
    dt(dl, 'leader known', c.knownLeader ? 'yes' : 'no', c.knownLeader ? 'ok' : 'bad');
    const dg = dt(dl, 'degraded', c.degraded ? 'yes' : 'no', c.degraded ? 'bad' : 'ok');
    if (c.degraded && c.reasons && c.reasons.length) {
      const ul = add(dg, h('ul', 'reasons'));
      for (const r of c.reasons) add(ul, h('li', null, r));
    }
    if (c.lastError) dt(dl, 'last error', c.lastError, 'muted');
  }

  function serverList(root: Node, s: ServersJSON | null): void {
    add(root, h('h3', null, 'Servers'));
    if (!s || !s.peers || s.peers.length === 0) {
      add(root, h('p', 'muted', s && s.error ? 'cannot read: ' + s.error : 'not read yet'));
      return;
    }
    const list = add(root, h('ul', 'servers'));
    for (const p of s.peers) {
      const li = add(list, h('li', p === s.leader ? 'leader' : ''));
      add(li, h('code', null, p));
      if (p === s.leader) add(li, h('b', null, ' leader'));
    }
    if (!s.leader) add(root, h('p', 'bad', 'no raft leader'));
    add(root, h('p', 'muted', 'read ' + ago(s.checkedAt) + (s.error ? ' \u00b7 last read failed: ' + s.error : '')));
  }

  export function renderConsul(): void {
    const root = $('consul-body');
    const d = st.dash;
    if (!d) return;
    clear(root);
    agentList(root, d.consul || {});
    serverList(root, d.servers);
  }
}
