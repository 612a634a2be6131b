// The timeline: events from the stream, newest first, each shown once even
// when a reconnect replays it.
namespace Dashboard {
  /** Events that change the route table: the snapshot is redrawn now, not at the next poll. */
  const TABLE_TYPES = new Set(['synced', 'service-added', 'service-removed', 'instance-added', 'instance-removed', 'instance-changed', 'instance-ejected', 'instance-readmitted']);
  const GOOD = new Set(['instance-added', 'instance-readmitted', 'consul-recovered', 'consul-leader-known', 'service-added', 'synced']);
  const BAD = new Set(['instance-removed', 'instance-ejected', 'consul-degraded', 'consul-leader-lost', 'service-removed']);
  /** How long a new event stays highlighted. */
  const NEW_MS = 1500;

  function tone(type: string): string {
    if (GOOD.has(type)) return 'good';
    return BAD.has(type) ? 'bad' : 'info';
  }

  /** Event ids are "<boot>.<n>": another boot means another gateway process, whose ids start again. */
  function noteBoot(ol: HTMLElement, boot: string | null): void {
    if (boot && st.boot && boot !== st.boot) {
      st.seen = {};
      st.seenCount = 0;
      const m = ol.insertBefore(h('li', 'marker', 'gateway restarted'), ol.firstChild);
      m.dataset.type = 'restart';
    }
    if (boot) st.boot = boot;
  }

  function eventItem(e: EventJSON): HTMLLIElement {
    const li = h('li', 'new ' + tone(e.type));
    li.dataset.type = String(e.type);
    if (e.service) li.dataset.service = String(e.service);
    const t = add(li, h('time', null, clock(e.at)));
    t.dateTime = String(e.at);
    add(li, h('b', 'type', e.type));
    if (e.service) add(li, h('code', null, e.service));
    if (e.instance) add(li, h('code', null, e.instance));
    add(li, h('span', 'detail', e.detail));
    return li;
  }

  /** Keeps the list and the ids remembered bounded on a page left open for days. */
  function trim(ol: HTMLElement): void {
    while (ol.children.length > MAX_EVENTS) ol.removeChild(ol.lastChild!);
    if (st.seenCount > MAX_EVENTS * 4) {
      st.seen = {};
      st.seenCount = 0;
      if (st.lastId) st.seen[st.lastId] = 1;
    }
  }

  export function onEvent(e: EventJSON | null, sseId: string): void {
    if (!e || typeof e !== 'object') return;
    const boot = sseId ? String(sseId).split('.')[0]! : null;
    if (sseId && st.seen[sseId]) return;
    const ol = $('events');
    noteBoot(ol, boot);
    if (sseId) {
      st.seen[sseId] = 1;
      st.seenCount++;
      st.lastId = sseId;
    }
    const li = eventItem(e);
    ol.insertBefore(li, ol.firstChild);
    setTimeout(() => li.classList.remove('new'), NEW_MS);
    trim(ol);
    if (TABLE_TYPES.has(e.type)) setTimeout(poll, 0);
  }
}
