// Starts the page: the first poll, the event stream, and a "why" panel the URL's hash asks for.
namespace Dashboard {
  function openFromHash(): void {
    const m = /^#why=(.+)$/.exec(location.hash);
    if (!m) return;
    try {
      openWhy(decodeURIComponent(m[1]!));
    } catch {
      // A malformed hash is ignored.
    }
  }

  function start(): void {
    setLive('wait');
    poll();
    connect();
    openFromHash();
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) poll();
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}
