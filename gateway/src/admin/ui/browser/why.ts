// "why?": the routing explanation of one service (GET /_gateway/explain/<name>),
// refreshed while open. Its JSON is read defensively: a 503 answers with an
// error body instead, and the raw JSON is shown below whatever it holds.
namespace Dashboard {
  interface ReasonJSON {
    code?: string | number;
    detail?: string | number;
  }

  interface ExplainedInstanceJSON {
    id?: string | number;
    address?: string;
    port?: number;
    node?: string;
    routable?: boolean;
    ejectedUntil?: string;
    ejection?: { until?: string } | null;
    reasons?: unknown;
    checks?: unknown;
  }

  type Fields = Record<string, unknown>;

  const isObject = (x: unknown): x is Fields => x !== null && typeof x === 'object';

  export function openWhy(name: string): void {
    st.why = name;
    st.explain = null;
    st.explainNote = 'loading\u2026';
    // The hash keeps the panel open across a reload.
    if (history.replaceState) history.replaceState(null, '', '#why=' + encodeURIComponent(name));
    $('why').hidden = false;
    renderWhy();
    loadWhy();
  }

  function closeWhy(): void {
    st.why = null;
    clearTimeout(st.explainTimer);
    $('why').hidden = true;
    if (history.replaceState) history.replaceState(null, '', location.pathname + location.search);
  }

  function loadWhy(): void {
    clearTimeout(st.explainTimer);
    const name = st.why;
    if (!name) return;
    // Each step checks the panel still explains this service: it may have been closed or switched meanwhile.
    void getJson<unknown>('/_gateway/explain/' + encodeURIComponent(name))
      .then(
        (x) => {
          if (st.why !== name) return;
          st.explain = x;
          st.explainNote = '';
        },
        (e: Error) => {
          if (st.why !== name) return;
          st.explain = null;
          st.explainNote = 'explain ' + e.message;
        },
      )
      .then(() => {
        if (st.why !== name) return;
        renderWhy();
        st.explainTimer = setTimeout(loadWhy, EXPLAIN_MS);
      });
  }

  /** A Consul check in one line, whichever casing the answer used. */
  function checkText(c: unknown): string {
    if (!isObject(c)) return String(c);
    const parts = [c.name || c.Name || c.checkId || c.CheckID || c.id, c.status || c.Status, c.output || c.Output].filter(Boolean);
    return parts.length ? parts.map(String).join(' \u00b7 ') : JSON.stringify(c);
  }

  function instancesOf(x: unknown): ExplainedInstanceJSON[] {
    if (Array.isArray(x)) return x as ExplainedInstanceJSON[];
    return isObject(x) && Array.isArray(x.instances) ? (x.instances as ExplainedInstanceJSON[]) : [];
  }

  function instanceHead(box: Node, i: ExplainedInstanceJSON): void {
    const head = add(box, h('p'));
    add(head, h('code', null, i.id));
    add(head, h('span', null, ' ' + (i.address || '') + (i.port ? ':' + i.port : '') + (i.node ? ' on ' + i.node : '') + ' \u2014 '));
    add(head, h('b', null, i.routable ? 'routable' : 'not routable'));
    const until = i.ejectedUntil || (i.ejection && i.ejection.until);
    if (until) add(head, h('span', 'bad', ' \u00b7 ejected until ' + until));
  }

  function reasonList(box: Node, reasons: unknown): void {
    const list = Array.isArray(reasons) ? (reasons as Array<ReasonJSON | null>) : [];
    if (!list.length) return;
    const ul = add(box, h('ul', 'reasons'));
    for (const r of list) {
      const li = add(ul, h('li'));
      add(li, h('code', null, r && r.code !== undefined ? r.code : '?'));
      add(li, h('span', null, ' ' + (r && r.detail !== undefined ? r.detail : '')));
    }
  }

  function checkList(box: Node, checks: unknown): void {
    const list: unknown[] = Array.isArray(checks) ? checks : [];
    if (!list.length) return;
    const cl = add(box, h('ul', 'checks'));
    for (const c of list) add(cl, h('li', null, checkText(c)));
  }

  function instanceBox(root: Node, i: ExplainedInstanceJSON): void {
    const box = add(root, h('div', 'explain ' + (i.routable ? 'ok' : 'bad')));
    box.dataset.instance = String(i.id);
    instanceHead(box, i);
    reasonList(box, i.reasons);
    checkList(box, i.checks);
  }

  function closeButton(root: Node): void {
    const close = add(root, h('button', 'close', 'close'));
    close.type = 'button';
    close.addEventListener('click', closeWhy);
  }

  function renderWhy(): void {
    const root = $('why-body');
    $('why-service').textContent = st.why ? '/' + st.why + '/' : '';
    clear(root);
    closeButton(root);
    if (st.explainNote) add(root, h('p', 'muted', st.explainNote));
    const x = st.explain;
    if (!x) return;
    if (isObject(x) && typeof x.summary === 'string') add(root, h('p', 'summary', x.summary));
    const list = instancesOf(x);
    if (list.length === 0) add(root, h('p', 'muted', 'no instance known for this service'));
    for (const i of list) instanceBox(root, i);
    const raw = add(root, h('details'));
    add(raw, h('summary', null, 'raw JSON'));
    add(raw, h('pre', null, JSON.stringify(x, null, 2)));
  }
}
