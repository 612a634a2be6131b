/**
 * The dashboard's browser script, served as /_gateway/ui/dashboard.js. Kept
 * as a string in a .ts file so it lands in dist/ without a build step of its
 * own. Plain ES2017 with no library. Every value from the gateway (so from
 * Consul) reaches the page through textContent, dataset or an encoded URL,
 * never as markup. It must contain no backtick and no dollar-brace: it lives
 * in a template literal.
 */
export const DASHBOARD_JS = String.raw`(function () {
  'use strict';
  var POLL_MS = 1000, HIDDEN_POLL_MS = 5000, STATS_RETRY_MS = 5000, EXPLAIN_MS = 2000, MAX_EVENTS = 200;
  var TABLE_TYPES = { 'synced': 1, 'service-added': 1, 'service-removed': 1, 'instance-added': 1, 'instance-removed': 1,
    'instance-changed': 1, 'instance-ejected': 1, 'instance-readmitted': 1 };
  var GOOD = { 'instance-added': 1, 'instance-readmitted': 1, 'consul-recovered': 1, 'consul-leader-known': 1, 'service-added': 1, 'synced': 1 };
  var BAD = { 'instance-removed': 1, 'instance-ejected': 1, 'consul-degraded': 1, 'consul-leader-lost': 1, 'service-removed': 1 };
  var st = { dash: null, dashError: null, stats: null, statsNote: 'stats: waiting', statsNextAt: 0,
    why: null, explain: null, explainNote: '', explainTimer: null, seen: {}, seenCount: 0, boot: null, lastId: null,
    cleared: false, pollTimer: null, polling: false, again: false, routes: null };

  function $(id) { return document.getElementById(id); }
  function h(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent, child) { parent.appendChild(child); return child; }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function num(x) { return typeof x === 'number' && isFinite(x); }
  function fmtRps(x) { return num(x) ? (x < 10 ? x.toFixed(1) : String(Math.round(x))) + '/s' : '\u2014'; }
  function fmtPct(x) { return num(x) ? (x * 100).toFixed(x < 0.1 ? 1 : 0) + '%' : '\u2014'; }
  function fmtMs(x) { return num(x) ? (x < 10 ? x.toFixed(1) : String(Math.round(x))) + ' ms' : '\u2014'; }
  function span(s) {
    s = Math.max(0, Math.round(s));
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    return Math.round(s / 3600) + ' h';
  }
  function ago(iso) {
    if (!iso) return '\u2014';
    var t = Date.parse(iso);
    return isNaN(t) ? String(iso) : span((Date.now() - t) / 1000) + ' ago';
  }
  function clock(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    function p(n, w) { n = String(n); while (n.length < w) n = '0' + n; return n; }
    return p(d.getHours(), 2) + ':' + p(d.getMinutes(), 2) + ':' + p(d.getSeconds(), 2) + '.' + p(d.getMilliseconds(), 3);
  }

  function getJson(url) {
    return fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store' }).then(function (res) {
      if (!res.ok && res.status !== 503) {
        var err = new Error(res.status === 404 ? 'not available (404)' : 'HTTP ' + res.status);
        err.status = res.status;
        throw err;
      }
      return res.json();
    });
  }

  // ---- live indicator and state line
  function setLive(mode) {
    var e = $('live');
    e.className = 'live ' + mode;
    e.textContent = mode === 'on' ? 'live' : mode === 'wait' ? 'reconnecting\u2026' : 'offline';
    document.body.dataset.live = mode;
  }

  function renderState() {
    var e = $('state'), d = st.dash;
    clear(e);
    if (st.dashError) { e.className = 'state bad'; e.textContent = 'Gateway unreachable: ' + st.dashError; return; }
    if (!d) { e.textContent = 'Loading\u2026'; return; }
    var c = d.consul || {};
    e.className = 'state ' + (!d.synced ? 'warn' : c.degraded ? 'bad' : 'ok');
    add(e, h('b', null, !d.synced ? 'Waiting for the first sync with Consul' : c.degraded ? 'Degraded: routing on the last good table' : 'In sync with Consul'));
    add(e, h('span', null, ' \u00b7 table version ' + d.version + ', changed ' + ago(d.changedAt)));
    add(e, h('span', 'muted', ' \u00b7 ' + st.statsNote));
  }

  // ---- services
  function statsFor(name) {
    var s = st.stats && st.stats.services;
    return s && Object.prototype.hasOwnProperty.call(s, name) ? s[name] : null;
  }
  function instStats(svc, key) {
    var i = svc && svc.instances;
    return i && Object.prototype.hasOwnProperty.call(i, key) ? i[key] : null;
  }
  function metric(parent, label, value, bad) {
    var m = add(parent, h('span', 'metric' + (bad ? ' bad' : '')));
    add(m, h('small', null, label + ' '));
    add(m, h('span', null, value));
  }

  function renderServices() {
    var root = $('services'), d = st.dash;
    if (!d) return;
    clear(root);
    var names = Object.keys(d.services || {});
    if (names.length === 0) { add(root, h('p', 'empty', 'No routable services in Consul yet.')); return; }
    var now = Date.now();
    names.forEach(function (name) {
      var list = d.services[name] || [];
      var s = statsFor(name);
      var sec = add(root, h('section', 'service'));
      sec.dataset.service = name;
      var head = add(sec, h('h2'));
      var a = add(head, h('a', null, '/' + name + '/'));
      a.href = '/' + encodeURIComponent(name) + '/';
      add(head, h('small', null, ' ' + list.length + ' passing '));
      var ms = add(head, h('span', 'metrics'));
      metric(ms, 'rps', fmtRps(s && s.rps));
      metric(ms, 'errors', fmtPct(s && s.errorRate), s && s.errorRate > 0.05);
      metric(ms, 'p50', fmtMs(s && s.p50Ms));
      metric(ms, 'p99', fmtMs(s && s.p99Ms));
      var btn = add(head, h('button', 'why-btn', 'why?'));
      btn.type = 'button';
      btn.dataset.service = name;
      btn.addEventListener('click', function () { openWhy(name); });
      var table = add(sec, h('table'));
      var tr = add(add(table, h('thead')), h('tr'));
      ['instance', 'address', 'node', 'rps', 'errors', 'p50', 'p99', 'score', 'state', 'joined'].forEach(function (t) { add(tr, h('th', null, t)); });
      var body = add(table, h('tbody'));
      if (list.length === 0) {
        var td = add(add(body, h('tr')), h('td', 'none', 'no passing instance (requests get 503)'));
        td.colSpan = 10;
      }
      list.forEach(function (i) {
        var is = instStats(s, i.key);
        var ej = i.ejectedUntil ? Date.parse(i.ejectedUntil) : 0;
        var row = add(body, h('tr', ej > now ? 'ejected' : ''));
        row.dataset.instance = i.id;
        add(add(row, h('td')), h('code', null, i.id));
        add(row, h('td', null, i.address + ':' + i.port));
        add(row, h('td', null, i.node));
        add(row, h('td', 'n', fmtRps(is && is.rps)));
        add(row, h('td', 'n' + (is && is.errorRate > 0.05 ? ' bad' : ''), fmtPct(is && is.errorRate)));
        add(row, h('td', 'n', fmtMs(is && is.p50Ms)));
        add(row, h('td', 'n', fmtMs(is && is.p99Ms)));
        var lb = is && is.balancer;
        var sc = add(row, h('td', 'n score' + (lb && lb.failures > 0 ? ' bad' : ''), lb && num(lb.score) ? String(lb.score) : '\u2014'));
        if (lb) sc.title = 'balancer cost (lower gets the request): latency ' + (lb.latencyMs === null ? 'not known yet' : fmtMs(lb.latencyMs)) + ', ' + lb.inflight + ' in flight' + (lb.failures > 0 ? ', last ' + lb.failures + ' failed' : '');
        var state = add(row, h('td', 'inst-state', ej > now ? 'ejected \u00b7 back in ' + span((ej - now) / 1000) : 'routable'));
        if (i.ejectedUntil) state.title = 'ejected until ' + i.ejectedUntil;
        var j = add(row, h('td', null, ago(i.joinedAt)));
        if (i.joinedAt) j.title = i.joinedAt;
      });
    });
  }

  // ---- routes declared in tags: each with its services, their shares and live rates (watch a canary here)
  function renderRoutes() {
    var sec = $('routes'), root = $('routes-body'), r = st.routes;
    if (!sec || !root) return;
    var has = r && ((r.routes && r.routes.length) || (r.rejectedTags && r.rejectedTags.length) || (r.defaultRouteOff && r.defaultRouteOff.length));
    sec.hidden = !has;
    if (!has) return;
    clear(root);
    if (r.routes.length > 0) {
      var table = add(root, h('table'));
      var tr = add(add(table, h('thead')), h('tr'));
      ['route', 'service', 'weight', 'share', 'rps', 'strip', 'state'].forEach(function (t) { add(tr, h('th', null, t)); });
      var body = add(table, h('tbody'));
      r.routes.forEach(function (route) {
        var rows = route.targets.concat(route.losers.map(function (l) { l.lost = true; return l; }));
        rows.forEach(function (t, i) {
          var row = add(body, h('tr', t.lost ? 'ejected' : (t.live ? '' : 'ejected')));
          row.dataset.route = route.route;
          row.dataset.service = t.service;
          var rc = add(row, h('td'));
          if (i === 0) add(rc, h('code', null, route.route));
          add(add(row, h('td')), h('code', null, t.service));
          add(row, h('td', 'n', t.lost ? '—' : t.weight === null ? 'rest' : String(t.weight)));
          add(row, h('td', 'n', t.lost ? '0%' : (Math.round(t.percent * 10) / 10) + '%'));
          var s = statsFor(t.service);
          add(row, h('td', 'n', fmtRps(s && s.rps)));
          add(row, h('td', null, t.strip || ''));
          var state = add(row, h('td', 'inst-state', t.lost ? 'conflict: lost' : t.live ? 'in route' : 'no passing instance'));
          if (t.lost) state.title = t.reason;
        });
      });
    }
    if (r.defaultRouteOff && r.defaultRouteOff.length) add(root, h('p', 'muted', '/<service>/ turned off for: ' + r.defaultRouteOff.join(', ')));
    if (r.rejectedTags && r.rejectedTags.length) {
      add(root, h('p', 'bad', 'Ignored tags:'));
      var ul = add(root, h('ul', 'rejected'));
      r.rejectedTags.forEach(function (x) { add(ul, h('li', null, x.service + ': ' + x.tag + ' — ' + x.reason)); });
    }
  }

  // ---- consul panel
  function dt(dl, k, v, cls) { add(dl, h('dt', null, k)); return add(dl, h('dd', cls || null, v)); }
  function renderConsul() {
    var root = $('consul-body'), d = st.dash;
    if (!d) return;
    clear(root);
    var c = d.consul || {}, s = d.servers;
    var dl = add(root, h('dl'));
    dt(dl, 'agent', (c.agent || 'none yet') + (c.reachable ? ' \u00b7 reachable' : ' \u00b7 unreachable'), c.reachable ? 'ok' : 'bad');
    var lc = dt(dl, 'last contact', c.lastContact ? ago(c.lastContact) + ' (' + (c.lastContactMs || 0) + ' ms stale)' : 'never');
    if (c.lastContact) lc.title = c.lastContact;
    dt(dl, 'leader known', c.knownLeader ? 'yes' : 'no', c.knownLeader ? 'ok' : 'bad');
    var dg = dt(dl, 'degraded', c.degraded ? 'yes' : 'no', c.degraded ? 'bad' : 'ok');
    if (c.degraded && c.reasons && c.reasons.length) {
      var ul = add(dg, h('ul', 'reasons'));
      c.reasons.forEach(function (r) { add(ul, h('li', null, r)); });
    }
    if (c.lastError) dt(dl, 'last error', c.lastError, 'muted');
    add(root, h('h3', null, 'Servers'));
    if (!s || !s.peers || s.peers.length === 0) {
      add(root, h('p', 'muted', s && s.error ? 'cannot read: ' + s.error : 'not read yet'));
      return;
    }
    var list = add(root, h('ul', 'servers'));
    s.peers.forEach(function (p) {
      var li = add(list, h('li', p === s.leader ? 'leader' : ''));
      add(li, h('code', null, p));
      if (p === s.leader) add(li, h('b', null, ' leader'));
    });
    if (!s.leader) add(root, h('p', 'bad', 'no raft leader'));
    add(root, h('p', 'muted', 'read ' + ago(s.checkedAt) + (s.error ? ' \u00b7 last read failed: ' + s.error : '')));
  }

  function render() { renderState(); renderRoutes(); renderServices(); renderConsul(); }

  // ---- polling: the snapshot every second, stats too (less often while they 404)
  function poll() {
    if (st.polling) { st.again = true; return; }
    st.again = false;
    st.polling = true;
    clearTimeout(st.pollTimer);
    var wantStats = Date.now() >= st.statsNextAt;
    var dash = getJson('/_gateway/dashboard').then(function (d) { st.dash = d; st.dashError = null; }, function (e) { st.dashError = e.message; });
    var routes = getJson('/_gateway/routes').then(function (r) { st.routes = r; }, function () { st.routes = null; });
    var stats = !wantStats ? Promise.resolve() : getJson('/_gateway/stats').then(function (s) {
      st.stats = s;
      st.statsNote = 'stats over ' + (s && s.windowSeconds ? s.windowSeconds : '?') + ' s';
    }, function (e) {
      st.stats = null;
      st.statsNote = 'stats ' + e.message;
      st.statsNextAt = Date.now() + STATS_RETRY_MS;
    });
    Promise.all([dash, stats, routes]).then(function () {
      st.polling = false;
      render();
      st.pollTimer = setTimeout(poll, st.again ? 0 : document.hidden ? HIDDEN_POLL_MS : POLL_MS);
    });
  }

  // ---- why: the routing explanation of one service
  function openWhy(name) {
    st.why = name;
    st.explain = null;
    st.explainNote = 'loading\u2026';
    if (history.replaceState) history.replaceState(null, '', '#why=' + encodeURIComponent(name));
    $('why').hidden = false;
    renderWhy();
    loadWhy();
  }
  function closeWhy() {
    st.why = null;
    clearTimeout(st.explainTimer);
    $('why').hidden = true;
    if (history.replaceState) history.replaceState(null, '', location.pathname + location.search);
  }
  function loadWhy() {
    clearTimeout(st.explainTimer);
    var name = st.why;
    if (!name) return;
    getJson('/_gateway/explain/' + encodeURIComponent(name)).then(function (x) {
      if (st.why !== name) return;
      st.explain = x;
      st.explainNote = '';
    }, function (e) {
      if (st.why !== name) return;
      st.explain = null;
      st.explainNote = 'explain ' + e.message;
    }).then(function () {
      if (st.why !== name) return;
      renderWhy();
      st.explainTimer = setTimeout(loadWhy, EXPLAIN_MS);
    });
  }
  function checkText(c) {
    if (c === null || typeof c !== 'object') return String(c);
    var parts = [c.name || c.Name || c.checkId || c.CheckID || c.id, c.status || c.Status, c.output || c.Output].filter(Boolean);
    return parts.length ? parts.map(String).join(' \u00b7 ') : JSON.stringify(c);
  }
  function renderWhy() {
    var root = $('why-body');
    $('why-service').textContent = st.why ? '/' + st.why + '/' : '';
    clear(root);
    var close = add(root, h('button', 'close', 'close'));
    close.type = 'button';
    close.addEventListener('click', closeWhy);
    if (st.explainNote) add(root, h('p', 'muted', st.explainNote));
    var x = st.explain;
    if (!x) return;
    if (x && typeof x.summary === 'string') add(root, h('p', 'summary', x.summary));
    var list = Array.isArray(x) ? x : x && Array.isArray(x.instances) ? x.instances : [];
    if (list.length === 0) add(root, h('p', 'muted', 'no instance known for this service'));
    list.forEach(function (i) {
      var box = add(root, h('div', 'explain ' + (i.routable ? 'ok' : 'bad')));
      box.dataset.instance = String(i.id);
      var head = add(box, h('p'));
      add(head, h('code', null, i.id));
      add(head, h('span', null, ' ' + (i.address || '') + (i.port ? ':' + i.port : '') + (i.node ? ' on ' + i.node : '') + ' \u2014 '));
      add(head, h('b', null, i.routable ? 'routable' : 'not routable'));
      var until = i.ejectedUntil || (i.ejection && i.ejection.until);
      if (until) add(head, h('span', 'bad', ' \u00b7 ejected until ' + until));
      var reasons = Array.isArray(i.reasons) ? i.reasons : [];
      if (reasons.length) {
        var ul = add(box, h('ul', 'reasons'));
        reasons.forEach(function (r) {
          var li = add(ul, h('li'));
          add(li, h('code', null, r && r.code !== undefined ? r.code : '?'));
          add(li, h('span', null, ' ' + (r && r.detail !== undefined ? r.detail : '')));
        });
      }
      var checks = Array.isArray(i.checks) ? i.checks : [];
      if (checks.length) {
        var cl = add(box, h('ul', 'checks'));
        checks.forEach(function (c) { add(cl, h('li', null, checkText(c))); });
      }
    });
    var raw = add(root, h('details'));
    add(raw, h('summary', null, 'raw JSON'));
    add(raw, h('pre', null, JSON.stringify(x, null, 2)));
  }

  // ---- timeline over Server-Sent Events
  function onEvent(e, sseId) {
    if (!e || typeof e !== 'object') return;
    var boot = sseId ? String(sseId).split('.')[0] : null;
    if (sseId && st.seen[sseId]) return;
    var ol = $('events');
    if (boot && st.boot && boot !== st.boot) {
      st.seen = {};
      st.seenCount = 0;
      var m = ol.insertBefore(h('li', 'marker', 'gateway restarted'), ol.firstChild);
      m.dataset.type = 'restart';
    }
    if (boot) st.boot = boot;
    if (sseId) { st.seen[sseId] = 1; st.seenCount++; st.lastId = sseId; }
    var li = h('li', 'new ' + (GOOD[e.type] ? 'good' : BAD[e.type] ? 'bad' : 'info'));
    li.dataset.type = String(e.type);
    if (e.service) li.dataset.service = String(e.service);
    var t = add(li, h('time', null, clock(e.at)));
    t.dateTime = String(e.at);
    add(li, h('b', 'type', e.type));
    if (e.service) add(li, h('code', null, e.service));
    if (e.instance) add(li, h('code', null, e.instance));
    add(li, h('span', 'detail', e.detail));
    ol.insertBefore(li, ol.firstChild);
    setTimeout(function () { li.classList.remove('new'); }, 1500);
    while (ol.children.length > MAX_EVENTS) ol.removeChild(ol.lastChild);
    if (st.seenCount > MAX_EVENTS * 4) { st.seen = {}; st.seenCount = 0; if (st.lastId) st.seen[st.lastId] = 1; }
    // A table event means the snapshot is out of date now, not in up to a second.
    if (TABLE_TYPES[e.type]) setTimeout(poll, 0);
  }

  function connect() {
    if (!window.EventSource) { setLive('off'); return; }
    var url = '/_gateway/events' + (st.lastId ? '?lastEventId=' + encodeURIComponent(st.lastId) : '');
    var es = new EventSource(url);
    es.onopen = function () {
      setLive('on');
      // The server-rendered list has no ids; the stream replays the same events with them.
      if (!st.cleared) { clear($('events')); st.cleared = true; }
    };
    es.onmessage = function (m) {
      var e;
      try { e = JSON.parse(m.data); } catch (_) { return; }
      onEvent(e, m.lastEventId);
    };
    es.onerror = function () {
      if (es.readyState === 2) {
        // Refused (503: too many streams, shutting down) or gone: the browser won't retry this one itself.
        setLive('off');
        es.close();
        setTimeout(connect, 3000);
      } else setLive('wait');
    };
  }

  function start() {
    setLive('wait');
    poll();
    connect();
    var m = /^#why=(.+)$/.exec(location.hash);
    if (m) { try { openWhy(decodeURIComponent(m[1])); } catch (_) { /* a malformed hash is ignored */ } }
    document.addEventListener('visibilitychange', function () { if (!document.hidden) poll(); });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
`;
