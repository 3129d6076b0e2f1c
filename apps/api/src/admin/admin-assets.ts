import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

/** htmx from node_modules (no network beyond this server); read once. */
export const HTMX_JS = readFileSync(createRequire(import.meta.url).resolve('htmx.org/dist/htmx.min.js'), 'utf8');

/** The console's script: no inline scripts anywhere (CSP `script-src 'self'`). */
export const ADMIN_JS = `'use strict';
// Keep the query inputs in step when htmx swaps in a new page of results.
document.addEventListener('htmx:responseError', function (e) {
  var box = document.getElementById('flash');
  if (box) { box.textContent = 'Request failed (' + e.detail.xhr.status + ')'; box.hidden = false; }
});
// Autofocus the confirm button of a confirmation panel swapped in by htmx.
document.addEventListener('htmx:afterSwap', function () {
  var b = document.querySelector('[data-autofocus]');
  if (b) b.focus();
});
`;

/** System fonts with CJK fallbacks, readable at phone width. */
export const ADMIN_CSS = `
:root { --fg:#1c2430; --muted:#5d6b7e; --line:#dde3ea; --bg:#f6f8fa; --card:#fff; --accent:#1f6feb; --bad:#c62828; --ok:#2e7d32; --warn:#b26a00; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin:0; color:var(--fg); background:var(--bg); line-height:1.55;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "PingFang SC", "Hiragino Sans GB",
    "Microsoft YaHei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif; }
:lang(zh) body, body:lang(zh) { line-height:1.7; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Noto Sans Mono CJK SC", monospace; font-size: .9em; }
header.top { display:flex; flex-wrap:wrap; gap:.5rem 1rem; align-items:center; padding:.6rem 1rem; background:#0d1b2a; color:#fff; }
header.top a { color:#cfe3ff; text-decoration:none; }
header.top a[aria-current] { color:#fff; font-weight:600; border-bottom:2px solid #fff; }
header.top .brand { font-weight:700; margin-right:auto; }
header.top form { display:inline; margin:0; }
header.top button { background:transparent; color:#cfe3ff; border:1px solid #3b4b63; border-radius:4px; padding:.15rem .6rem; cursor:pointer; }
main { padding:1rem; max-width:1200px; margin:0 auto; }
h1 { font-size:1.35rem; margin:.2rem 0 1rem; word-break:break-word; }
h2 { font-size:1.1rem; margin:1.4rem 0 .6rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:1rem; margin-bottom:1rem; }
.filters { display:grid; grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); gap:.6rem; align-items:end; }
.filters .wide { grid-column: 1 / -1; }
label { display:flex; flex-direction:column; font-size:.85rem; color:var(--muted); gap:.2rem; }
input, select, textarea { font:inherit; padding:.4rem .5rem; border:1px solid var(--line); border-radius:6px; background:#fff; color:var(--fg); min-width:0; }
button, .button { font:inherit; padding:.45rem .9rem; border-radius:6px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; text-decoration:none; display:inline-block; }
button.secondary, .button.secondary { background:#fff; color:var(--accent); }
button.danger, .button.danger { background:var(--bad); border-color:var(--bad); }
.table-wrap { overflow-x:auto; -webkit-overflow-scrolling:touch; }
table { border-collapse:collapse; width:100%; background:var(--card); }
th, td { text-align:left; padding:.45rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:.8rem; color:var(--muted); font-weight:600; white-space:nowrap; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.subject { max-width:28rem; overflow-wrap:anywhere; }
.badge { display:inline-block; padding:0 .5rem; border-radius:999px; font-size:.8rem; border:1px solid currentColor; white-space:nowrap; }
.s-success, .v-ok { color:var(--ok); } .s-wait { color:var(--warn); } .s-close, .s-timeout, .s-failed, .v-bad { color:var(--bad); }
.muted { color:var(--muted); }
.paging { display:flex; gap:1rem; margin:.8rem 0; }
.kv { display:grid; grid-template-columns:max-content 1fr; gap:.3rem 1rem; margin:0; }
.kv dt { color:var(--muted); } .kv dd { margin:0; overflow-wrap:anywhere; }
ol.timeline { list-style:none; padding:0; margin:0; border-left:2px solid var(--line); }
ol.timeline li { position:relative; padding:.3rem 0 .5rem 1rem; }
ol.timeline li::before { content:""; position:absolute; left:-6px; top:.75rem; width:10px; height:10px; border-radius:50%; background:var(--accent); }
ol.timeline li.k-audit::before { background:var(--warn); } ol.timeline li.k-notify::before { background:#6a1b9a; }
ol.timeline li.k-refund::before { background:var(--bad); } ol.timeline li.k-event::before, ol.timeline li.k-delivery::before { background:#00838f; }
ol.timeline time { color:var(--muted); font-size:.85rem; margin-right:.5rem; }
.actions { display:flex; flex-wrap:wrap; gap:.8rem; align-items:flex-end; }
.actions form { display:flex; flex-wrap:wrap; gap:.5rem; align-items:flex-end; margin:0; }
.confirm { border:2px solid var(--warn); }
.flash { padding:.6rem 1rem; border-radius:6px; margin-bottom:1rem; background:#e8f5e9; border:1px solid #a5d6a7; }
.flash.error { background:#ffebee; border-color:#ef9a9a; }
pre { white-space:pre-wrap; overflow-wrap:anywhere; background:#f3f5f7; padding:.6rem; border-radius:6px; max-height:20rem; overflow:auto; }
.charts { display:grid; grid-template-columns:repeat(auto-fit, minmax(min(100%, 520px), 1fr)); gap:1rem; }
figure { margin:0; }
svg.chart { width:100%; height:auto; display:block; }
svg.chart text { font-size:12px; fill:var(--muted); }
.legend { display:flex; flex-wrap:wrap; gap:.3rem 1rem; font-size:.85rem; }
.legend i { display:inline-block; width:.8rem; height:.8rem; border-radius:2px; margin-right:.3rem; vertical-align:-1px; }
.lang { font-size:.85rem; }
.login { max-width:26rem; margin:3rem auto; }
main { overflow-wrap:anywhere; }
.kv { grid-template-columns:minmax(0, max-content) minmax(0, 1fr); }
input, select, textarea, label, .actions form { max-width:100%; }
details summary { overflow-wrap:anywhere; }
@media (max-width: 640px) {
  main { padding:.6rem; }
  .hide-narrow { display:none; }
  th, td { padding:.35rem .4rem; }
}
`;
