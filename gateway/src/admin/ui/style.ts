/** The dashboard's stylesheet, served as /_gateway/ui/dashboard.css (a file, since the page's CSP allows no inline style). */
export const DASHBOARD_CSS = `
:root{--ok:#0a7d32;--bad:#b3261e;--warn:#9a6700;--muted:#667;--line:#e3e3e8;--bg:#fafafb}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d1d22;background:var(--bg)}
header{display:flex;align-items:center;gap:1rem;padding:.6rem 1.2rem;background:#1d1d22;color:#fff}
header h1{font-size:1.1rem;margin:0}
.live{font-size:12px;padding:.1rem .5rem;border-radius:1rem;background:#555}
.live.on{background:var(--ok)}.live.on::before{content:"\\25CF  "}
.live.wait{background:var(--warn)}.live.off{background:var(--bad)}
.state{margin:0;padding:.5rem 1.2rem;border-bottom:1px solid var(--line);background:#fff}
.state.ok b{color:var(--ok)}.state.bad b,.state.bad{color:var(--bad)}.state.warn b{color:var(--warn)}
main{display:grid;grid-template-columns:minmax(0,3fr) minmax(18rem,2fr);gap:1rem;padding:1rem 1.2rem}
@media (max-width:900px){main{grid-template-columns:1fr}}
.service,.panel{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem;margin-bottom:1rem}
.service{overflow-x:auto}
td:first-child code{white-space:normal;word-break:break-all}
.service h2,.panel h2{font-size:1rem;margin:0 0 .4rem;display:flex;flex-wrap:wrap;align-items:baseline;gap:.5rem}
.panel h3{font-size:.9rem;margin:.6rem 0 .2rem}
.metrics{display:flex;gap:.8rem;margin-left:auto;font-weight:normal}
.metric small{color:var(--muted)}
small,.muted{color:var(--muted);font-weight:normal}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.2rem .4rem;border-top:1px solid var(--line);white-space:nowrap}
th{font-weight:600;color:var(--muted);font-size:12px}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.ejected{background:#fff1f0}tr.ejected .inst-state{color:var(--bad);font-weight:600}
.summary{margin:.2rem 0 .4rem}
.none,.bad{color:var(--bad)}.ok{color:var(--ok)}
code{font:12px ui-monospace,monospace}
button{font:inherit;font-size:12px;padding:.1rem .5rem;cursor:pointer}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:0}
dt{color:var(--muted)}dd{margin:0}
ul.reasons,ul.checks{margin:.2rem 0;padding-left:1.2rem}
ul.servers{list-style:none;padding:0;margin:0}ul.servers li.leader{font-weight:600}
#events{list-style:none;padding:0;margin:0;max-height:60vh;overflow:auto}
#events li{padding:.25rem .3rem;border-top:1px solid var(--line);transition:background 1s}
#events li.new{background:#fff6c8}
#events li time{color:var(--muted);font:12px ui-monospace,monospace;margin-right:.4rem}
#events li .type{margin-right:.4rem}#events li code{margin-right:.4rem}
#events li.good .type{color:var(--ok)}#events li.bad .type{color:var(--bad)}
#events li.marker{font-weight:600;color:var(--warn)}
.explain{border-left:3px solid var(--line);padding:.2rem .6rem;margin:.4rem 0}
.explain.ok{border-color:var(--ok)}.explain.bad{border-color:var(--bad)}
.explain p{margin:0}
pre{font:12px ui-monospace,monospace;background:var(--bg);padding:.5rem;overflow:auto;max-height:20rem}
footer{padding:0 1.2rem 1rem}
`;
