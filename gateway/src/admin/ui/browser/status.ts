// The header's live indicator and the state line under it.
namespace Dashboard {
  export type LiveMode = 'on' | 'wait' | 'off';

  const LIVE_TEXT: Record<LiveMode, string> = { on: 'live', wait: 'reconnecting\u2026', off: 'offline' };

  export function setLive(mode: LiveMode): void {
    const e = $('live');
    e.className = 'live ' + mode;
    e.textContent = LIVE_TEXT[mode];
    // Tests and styles read the mode from the body.
    document.body.dataset.live = mode;
  }

  function discovery(d: SnapshotJSON): { cls: string; text: string } {
    const degraded = d.consul && d.consul.degraded;
    if (!d.synced) return { cls: 'warn', text: 'Waiting for the first sync with Consul' };
    if (degraded) return { cls: 'bad', text: 'Degraded: routing on the last good table' };
    return { cls: 'ok', text: 'In sync with Consul' };
  }

  export function renderState(): void {
    const e = $('state');
    const d = st.dash;
    clear(e);
    if (st.dashError) {
      e.className = 'state bad';
      e.textContent = 'Gateway unreachable: ' + st.dashError;
      return;
    }
    if (!d) {
      e.textContent = 'Loading\u2026';
      return;
    }
    const line = discovery(d);
    e.className = 'state ' + line.cls;
    add(e, h('b', null, line.text));
    add(e, h('span', null, ' \u00b7 table version ' + d.version + ', changed ' + ago(d.changedAt)));
    add(e, h('span', 'muted', ' \u00b7 ' + st.statsNote));
  }
}
