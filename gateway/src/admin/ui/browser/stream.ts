// The event stream (SSE): the browser reconnects on its own and resends the
// last id; only a refused or closed stream is reopened here.
namespace Dashboard {
  const REOPEN_MS = 3000;

  export function connect(): void {
    if (!('EventSource' in window)) {
      setLive('off');
      return;
    }
    const url = '/_gateway/events' + (st.lastId ? '?lastEventId=' + encodeURIComponent(st.lastId) : '');
    const es = new EventSource(url);
    es.onopen = () => {
      setLive('on');
      // The server-rendered list has no ids; the stream replays the same events with them.
      if (!st.cleared) {
        clear($('events'));
        st.cleared = true;
      }
    };
    es.onmessage = (m: MessageEvent<string>) => {
      let e: EventJSON | null;
      try {
        e = JSON.parse(m.data) as EventJSON | null;
      } catch {
        return;
      }
      onEvent(e, m.lastEventId);
    };
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED) return setLive('wait');
      // Refused (503: too many streams, shutting down) or gone: the browser won't retry this one itself.
      setLive('off');
      es.close();
      setTimeout(connect, REOPEN_MS);
    };
  }
}
