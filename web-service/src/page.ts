import { escapeHtml } from '@stack/shared';

/** What the page shows: the same facts as the JSON answer of `GET /`. */
export interface PageView {
  service: string;
  instance: string;
  hostname: string;
  ip: string;
  port: number;
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  draining: boolean;
  requestId: string;
  time: string;
}


/**
 * A hue (0-359) that is the same for an instance id every time and differs
 * between ids (FNV-1a), so reloading through the gateway shows the round robin
 * as a change of colour.
 */
export function instanceHue(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % 360;
}

/** 3725.4 → "1h 2m 5s". */
export function formatUptime(seconds: number): string {
  let s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3_600);
  s -= h * 3_600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = [d ? `${d}d` : '', d || h ? `${h}h` : '', d || h || m ? `${m}m` : '', `${s}s`];
  return parts.filter(Boolean).join(' ');
}

/**
 * A small self-contained page (no script, no external resource) saying which
 * instance answered, on a background coloured by its id. Every value is escaped.
 */
export function renderPage(v: PageView): string {
  const hue = instanceHue(v.instance);
  const rows: Array<[string, unknown]> = [
    ['service', v.service],
    ['hostname', v.hostname],
    ['IP', `${v.ip}:${v.port}`],
    ['pid', v.pid],
    ['up', `${formatUptime(v.uptimeSeconds)} (since ${v.startedAt})`],
    ['state', v.draining ? 'draining: on its way out' : 'serving'],
    ['request id', v.requestId],
    ['answered at', v.time],
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(v.instance)} · ${escapeHtml(v.service)}</title>
<style>
  body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
    font: 16px/1.5 system-ui, sans-serif; color: hsl(${hue} 40% 15%); background: hsl(${hue} 70% 85%); }
  main { background: hsl(${hue} 60% 96%); border: 4px solid hsl(${hue} 60% 45%); border-radius: 12px;
    padding: 1.5rem 2rem; max-width: 42rem; box-shadow: 0 4px 16px hsl(${hue} 40% 30% / .25); }
  h1 { margin: 0 0 .25rem; font-size: 1.6rem; overflow-wrap: anywhere; }
  p { margin: 0 0 1rem; }
  th { text-align: left; padding-right: 1rem; font-weight: 600; white-space: nowrap; vertical-align: top; }
  td { overflow-wrap: anywhere; font-family: ui-monospace, monospace; }
  .draining { color: hsl(0 70% 35%); font-weight: 600; }
</style>
</head>
<body>
<main>
<p>This answer came from instance</p>
<h1>${escapeHtml(v.instance)}</h1>
<table>
${rows.map(([k, val]) => `<tr><th>${escapeHtml(k)}</th><td${k === 'state' && v.draining ? ' class="draining"' : ''}>${escapeHtml(val)}</td></tr>`).join('\n')}
</table>
<p><small>Reload: through the gateway each request may go to another instance, and the colour changes with it.</small></p>
</main>
</body>
</html>
`;
}
