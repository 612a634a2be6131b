// How figures and times read on the page; a missing figure is a dash.
namespace Dashboard {
  const NONE = '\u2014';

  export function num(x: unknown): x is number {
    return typeof x === 'number' && isFinite(x);
  }

  /** One decimal below 10, whole numbers above. */
  function short(x: number): string {
    return x < 10 ? x.toFixed(1) : String(Math.round(x));
  }

  export function fmtRps(x: number | null | undefined): string {
    return num(x) ? short(x) + '/s' : NONE;
  }

  export function fmtPct(x: number | null | undefined): string {
    return num(x) ? (x * 100).toFixed(x < 0.1 ? 1 : 0) + '%' : NONE;
  }

  export function fmtMs(x: number | null | undefined): string {
    return num(x) ? short(x) + ' ms' : NONE;
  }

  /** A duration in seconds, in the unit a person reads it in. */
  export function span(s: number): string {
    s = Math.max(0, Math.round(s));
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    return Math.round(s / 3600) + ' h';
  }

  export function ago(iso: string | null | undefined): string {
    if (!iso) return NONE;
    const t = Date.parse(iso);
    return isNaN(t) ? String(iso) : span((Date.now() - t) / 1000) + ' ago';
  }

  function pad(n: number, width: number): string {
    let s = String(n);
    while (s.length < width) s = '0' + s;
    return s;
  }

  /** Local time of day to the millisecond: events come close together. */
  export function clock(iso: string): string {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return pad(d.getHours(), 2) + ':' + pad(d.getMinutes(), 2) + ':' + pad(d.getSeconds(), 2) + '.' + pad(d.getMilliseconds(), 3);
  }
}
