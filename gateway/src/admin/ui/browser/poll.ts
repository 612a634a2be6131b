// Polling: the snapshot and the routes every second, the stats too (less
// often while the gateway has none: they 404 there).
namespace Dashboard {
  export function render(): void {
    renderState();
    renderRoutes();
    renderServices();
    renderConsul();
  }

  function loadDashboard(): Promise<void> {
    return getJson<SnapshotJSON>('/_gateway/dashboard').then(
      (d) => {
        st.dash = d;
        st.dashError = null;
      },
      (e: Error) => {
        st.dashError = e.message;
      },
    );
  }

  function loadRoutes(): Promise<void> {
    return getJson<RoutesJSON>('/_gateway/routes').then(
      (r) => {
        st.routes = r;
      },
      () => {
        st.routes = null;
      },
    );
  }

  function loadStats(): Promise<void> {
    return getJson<StatsJSON | null>('/_gateway/stats').then(
      (s) => {
        st.stats = s;
        st.statsNote = 'stats over ' + (s && s.windowSeconds ? s.windowSeconds : '?') + ' s';
      },
      (e: Error) => {
        st.stats = null;
        st.statsNote = 'stats ' + e.message;
        st.statsNextAt = Date.now() + STATS_RETRY_MS;
      },
    );
  }

  /** One poll at a time; a poll asked for meanwhile runs as soon as this one is drawn. */
  export function poll(): void {
    if (st.polling) {
      st.again = true;
      return;
    }
    st.again = false;
    st.polling = true;
    clearTimeout(st.pollTimer);
    const wantStats = Date.now() >= st.statsNextAt;
    const dash = loadDashboard();
    const routes = loadRoutes();
    const stats = wantStats ? loadStats() : Promise.resolve();
    void Promise.all([dash, stats, routes]).then(() => {
      st.polling = false;
      render();
      st.pollTimer = setTimeout(poll, st.again ? 0 : document.hidden ? HIDDEN_POLL_MS : POLL_MS);
    });
  }
}
