"""The one HTML page both the report and the dashboard are: a view drawn by a small script.

The page holds the view (from :func:`aiotune.views.figures.build_view`) as
JSON in a ``<script type="application/json">`` block, escaped so no string
in it can end the block, and draws it with the page's own SVG charts
(:mod:`aiotune.views.chart`, inlined: the page needs no network and no
library). Every table cell, label and tick is set with ``textContent``, so
a value from a study is always shown as text. The dashboard's page also
listens for new views as server-sent events.
"""

from __future__ import annotations

import html
from typing import Any

import orjson

from aiotune.views.chart import CHART_JS


def view_json(view: dict[str, Any]) -> str:
    """``view`` as JSON text that is safe inside a ``<script>`` block of an HTML page."""
    text = orjson.dumps(view, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(view: dict[str, Any] | str, *, title: str, events_url: str | None = None) -> str:
    """The HTML page for ``view``, self-contained (scripts and styles inlined).

    ``view`` is the view, or its JSON text from :func:`view_json`. With
    ``events_url`` the page follows server-sent events, each a new view.
    """
    live = "null" if events_url is None else orjson.dumps(events_url).decode()
    return _TEMPLATE.format(
        title=html.escape(title),
        view=view if isinstance(view, str) else view_json(view),
        live=live.replace("<", "\\u003c"),
        css=_CSS,
        script=CHART_JS + _SCRIPT,
    )


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #1d2b36; background: #f5f7f9; }
header { background: #264653; color: white; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; }
header .sub { opacity: .8; font-size: 13px; word-break: break-all; }
main { padding: 16px 24px; max-width: 1400px; margin: 0 auto; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }
.card { background: white; border-radius: 6px; padding: 10px 14px; min-width: 120px;
        box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card .k { font-size: 12px; color: #5c6b77; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 600; }
.notes { background: #fff6e0; border-left: 4px solid #f4a261; padding: 6px 12px; }
.notes:empty { display: none; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
section.fig, section.table { background: white; border-radius: 6px; padding: 8px 12px;
        box-shadow: 0 1px 2px rgba(0,0,0,.08); min-width: 0; }
section.table { overflow-x: auto; }
section h2 { font-size: 15px; margin: 4px 0; }
section .note { font-size: 12px; color: #5c6b77; margin: 0 0 4px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #e3e8ec;
         vertical-align: top; }
td.msg { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-word; }
.live { display: inline-block; width: 9px; height: 9px; border-radius: 50%;
        background: #8d99ae; margin-right: 6px; }
.live.on { background: #2a9d8f; }
.plot svg { display: block; user-select: none; }
.plot text { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: #444;
          margin: 2px 0 4px 8px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
            margin-right: 5px; vertical-align: -1px; }
.zoomed { font-size: 11px; color: #5c6b77; text-align: right; }
#charttip { position: fixed; display: none; pointer-events: none; z-index: 10;
            background: rgba(29,43,54,.92); color: white; font-size: 12px; padding: 4px 7px;
            border-radius: 4px; white-space: pre; }
"""

_SCRIPT = r"""
"use strict";
const STATUS = ["complete", "failed", "pruned", "timeout", "cancelled"];
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function card(key, value) {
  const c = el("div", "card");
  c.append(el("div", "k", key), el("div", "v", value));
  return c;
}
function table(head, rows) {
  const t = el("table"), tr = el("tr");
  head.forEach(h => tr.append(el("th", null, h)));
  t.append(tr);
  rows.forEach(r => {
    const row = el("tr");
    r.forEach((cell, i) => row.append(el("td", i === r.length - 1 && head[i] === "message"
      ? "msg" : null, cell)));
    t.append(row);
  });
  return t;
}
function section(id, title, note, cls) {
  let s = document.getElementById(id);
  if (!s) {
    s = el("section", cls);
    s.id = id;
    s.append(el("h2", null, ""), el("p", "note", ""));
  }
  s.children[0].textContent = title;
  s.children[1].textContent = note || "";
  return s;
}
function render(view) {
  const s = view.summary;
  const multi = s.objectives.length > 1;
  const direction = Array.isArray(view.direction) ? view.direction.join(", ") : view.direction;
  document.getElementById("label").textContent = view.label + " · " + direction
    + (view.live ? "" : " · generated " + view.generated);
  const cards = document.getElementById("cards");
  cards.replaceChildren(card("trials", s.trials));
  if (s.running !== null) cards.append(card("running", s.running));
  STATUS.forEach(k => { if (s.counts[k]) cards.append(card(k, s.counts[k])); });
  if (s.infeasible) cards.append(card("infeasible", s.infeasible));
  if (multi) cards.append(card("Pareto front", s.front_total + " trials"));
  else cards.append(card("best score", s.best ? s.best.score + " (#" + s.best.number + ")" : "—"));
  if (s.durations) cards.append(card("median duration", s.durations.median + " s"));
  const notes = document.getElementById("notes");
  notes.replaceChildren(...view.notes.map(n => el("div", null, n)));
  const grid = document.getElementById("figures");
  const wanted = new Set(view.figures.map(f => "fig-" + f.id));
  Array.from(grid.children).forEach(c => { if (!wanted.has(c.id)) c.remove(); });
  const plots = view.figures.map(f => {
    const sec = section("fig-" + f.id, f.title, f.note, "fig");
    let plot = sec.querySelector(".plot");
    if (!plot) { plot = el("div", "plot"); sec.append(plot); }
    grid.append(sec);
    return plot;
  });
  const widths = plots.map(p => p.clientWidth);  // one layout for all, then draw them all
  plots.forEach((p, i) => drawChart(p, view.figures[i].figure, widths[i]));
  const tables = document.getElementById("tables");
  const fail = section("failures", "Failures", view.failures_total > view.failures.length
    ? "The last " + view.failures.length + " of " + view.failures_total + "." : "", "table");
  fail.querySelector("table")?.remove();
  fail.append(table(["#", "status", "error", "message"],
    view.failures.map(r => [r.number, r.status, r.type, r.message])));
  if (multi) {
    const note = s.front_total === 0 ? "No feasible trial completed yet."
      : "Feasible complete trials no other one beats in every objective"
        + (s.front_total > s.front.length ? "; the first " + s.front.length + " of "
           + s.front_total + "." : ".");
    const front = section("front", "Pareto front", note, "table");
    front.querySelector("table")?.remove();
    front.append(table(["#"].concat(s.objectives, ["duration (s)"], view.params),
      s.front.map(r => [r.number].concat(r.scores, [r.duration],
                                         view.params.map(p => r.params[p])))));
    tables.replaceChildren(front, fail);
  } else {
    const best = section("best", "Best trial", s.best ? "" : s.infeasible
      ? "No feasible trial completed yet." : "No trial completed yet.", "table");
    best.querySelector("table")?.remove();
    if (s.best) best.append(table(["parameter", "value"],
      [["trial", s.best.number], ["score", s.best.score]].concat(
        view.params.map(p => [p, s.best.params[p]]))));
    const top = section("top", "Top trials by score", s.infeasible ? "Feasible trials." : "",
                        "table");
    top.querySelector("table")?.remove();
    top.append(table(["#", "score", "duration (s)"].concat(view.params),
      view.top.map(r => [r.number, r.score, r.duration].concat(
        view.params.map(p => r.params[p])))));
    tables.replaceChildren(best, top, fail);
  }
  document.body.dataset.version = view.version;
  document.body.dataset.trials = s.trials;
}
render(JSON.parse(document.getElementById("view").textContent));
const LIVE = JSON.parse(document.getElementById("live").textContent);
if (!LIVE) document.getElementById("dot").remove();
if (LIVE) {
  const dot = document.getElementById("dot");
  const events = new EventSource(LIVE);
  events.onopen = () => dot.classList.add("on");
  events.onerror = () => dot.classList.remove("on");
  events.onmessage = e => render(JSON.parse(e.data));
}
performance.mark("aiotune-drawn");  // every plot drawn (benchmarks/views.py reads it)
document.body.dataset.ready = "1";
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head><body>
<header><h1><span id="dot" class="live"></span>{title}</h1>
<div class="sub" id="label"></div></header>
<main>
<div class="cards" id="cards"></div>
<div class="notes" id="notes"></div>
<div class="grid" id="figures"></div>
<div class="grid" id="tables" style="margin-top:16px"></div>
</main>
<script id="view" type="application/json">{view}</script>
<script id="live" type="application/json">{live}</script>
<script>{script}</script>
</body></html>
"""
