// Every value from the gateway (so from Consul) reaches the page through
// textContent, dataset or an encoded URL, never as markup: these helpers are
// the only way the script builds elements.
namespace Dashboard {
  /** An element the page's HTML (page.ts) always has. */
  export function $(id: string): HTMLElement {
    const e = document.getElementById(id);
    if (!e) throw new Error(`the page has no #${id}`);
    return e;
  }

  /** A new element with a class and text; null or undefined text leaves it empty. */
  export function h<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string | null, text?: string | number | null): HTMLElementTagNameMap[K] {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  export function add<T extends Node>(parent: Node, child: T): T {
    parent.appendChild(child);
    return child;
  }

  export function clear(e: Node): void {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  /** A table with a header row; returns its body. */
  export function table(parent: Node, headings: readonly string[]): HTMLTableSectionElement {
    const t = add(parent, h('table'));
    const tr = add(add(t, h('thead')), h('tr'));
    for (const heading of headings) add(tr, h('th', null, heading));
    return add(t, h('tbody'));
  }
}
