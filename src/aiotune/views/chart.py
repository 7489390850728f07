"""The page's own plotting script: small SVG charts, drawn in milliseconds, no library.

Plotly.js took 2.4 of the 4.5 s a 1,000-trial report needed to render in
headless Chromium (4.8 MB of JavaScript to parse and evaluate before the
first plot); this script is about 18 kB and the whole report renders in
about 1 s, faster than a page that only loads Plotly.js
(``benchmarks/README.md``, "Seeing a study").

A figure is a ``{"data": [trace, ...], "layout": {...}}`` dict, built by
:mod:`aiotune.views.figures` and :mod:`aiotune.views.params`. Traces:

- ``scatter`` with ``mode`` ``"markers"`` (``marker``: ``size``, ``color`` — a
  colour or a number per point mapped through Viridis —, ``opacity``,
  ``symbol`` ``"circle"`` or ``"x"``, ``line`` for an outline) or ``"lines"``
  (``line``: ``color``, ``width``, ``shape`` ``"hv"`` for steps; ``None`` in
  ``x``/``y`` breaks a line);
- ``bar`` with ``orientation`` ``"v"`` (categories on x) or ``"h"``
  (categories on y; ``base`` per bar for a timeline), ``marker.color`` a
  colour or one per bar;
- ``contour``: mean values ``z[row][col]`` at the centres ``x``, ``y`` of a
  full grid, drawn as filled bands (10 levels, bilinear between centres)
  with a colour bar.

Each trace may have a ``name`` (shown in the legend when the layout's
``showlegend`` is set) and a ``hover`` template: ``%{x}``, ``%{y}``,
``%{customdata}``, ``%{text}``, ``%{color}``, ``%{z}``, each with an optional
format ``:.Ng`` (N significant digits) or ``:.Nf``. The layout has
``height``, ``margin``, and per axis ``title.text``, ``tickvals`` with
``ticktext`` (categories at integer positions), ``range``, ``visible``,
``side`` (``"top"``), ``categoryorder`` (``"category ascending"``), plus
``annotations`` (text at data coordinates).

Every string reaches the page through ``textContent`` (never as markup), so
a value from a study shows as text. Drag a box to zoom in; double-click to
zoom out; hover a point or a bar for its trial. Each drawn plot is an
``<svg class="chart">``; each trace a ``<g class="trace">`` whose
``data-name`` and ``data-points`` say what it holds.
"""

CHART_JS = r"""
"use strict";
const SVGNS = "http://www.w3.org/2000/svg";
let CLIP = 0;
function S(tag, attrs, parent) {
  const n = document.createElementNS(SVGNS, tag);
  for (const k in attrs) n.setAttribute(k, attrs[k]);
  if (parent) parent.append(n);
  return n;
}
function T(parent, x, y, str, attrs) {
  const t = S("text", Object.assign({x: x, y: y}, attrs || {}), parent);
  t.textContent = String(str);
  return t;
}
const VIR = [[68,1,84],[72,40,120],[62,74,137],[49,104,142],[38,130,142],[31,158,137],
             [53,183,121],[109,205,89],[180,222,44],[253,231,37]];
function viridis(t) {
  t = Math.max(0, Math.min(1, t));
  const p = t * (VIR.length - 1), i = Math.min(VIR.length - 2, Math.floor(p)), f = p - i;
  const a = VIR[i], b = VIR[i + 1];
  return [0, 1, 2].map(k => Math.round(a[k] + (b[k] - a[k]) * f));
}
function rgb(c) { return "rgb(" + c.join(",") + ")"; }
function fmt(v, spec) {
  if (typeof v !== "number") return v === null || v === undefined ? "" : String(v);
  const m = /^\.(\d+)([gf])$/.exec(spec || "");
  if (!m) return String(v);
  if (m[2] === "f") return v.toFixed(+m[1]);
  const s = v.toPrecision(+m[1]);
  const trim = a => a.includes(".") ? a.replace(/\.?0+$/, "") : a;
  if (s.includes("e")) { const p = s.split("e"); return trim(p[0]) + "e" + p[1]; }
  return trim(s);
}
function fill(template, get) {
  return template.replace(/%\{(\w+)(?::([^}]*))?\}/g, (_, k, spec) => fmt(get(k), spec));
}
function tip() {
  let t = document.getElementById("charttip");
  if (!t) {
    t = document.createElement("div");
    t.id = "charttip";
    document.body.append(t);
  }
  return t;
}
function niceTicks(lo, hi, n) {
  const span = hi - lo;
  if (!(span > 0) || !isFinite(span)) return [lo];
  const raw = span / Math.max(1, n), mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const r = raw / mag, step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}
// One axis: its categories or numeric range, ticks, and a scale to pixels.
function axis(spec, values, cats, zero, pixels, zoom) {
  const ax = {spec: spec || {}};
  let lo = Infinity, hi = -Infinity;
  if (cats) { lo = -0.5; hi = cats.length - 0.5; }
  for (const v of values) if (v !== null && isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (lo === Infinity) { lo = 0; hi = 1; }
  if (!cats) {
    if (zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    if (hi === lo) { const d = Math.abs(lo) * 0.1 || 0.5; lo -= d; hi += d; }
    const pad = (hi - lo) * 0.05;
    if (!(zero && lo === 0)) lo -= pad;
    if (!(zero && hi === 0)) hi += pad;
  }
  const tv = ax.spec.tickvals;
  if (tv && tv.length && !cats) {
    lo = Math.min(lo, Math.min(...tv) - 0.5);
    hi = Math.max(hi, Math.max(...tv) + 0.5);
  }
  if (ax.spec.range) { lo = ax.spec.range[0]; hi = ax.spec.range[1]; }
  if (zoom) { lo = zoom[0]; hi = zoom[1]; }
  ax.lo = lo; ax.hi = hi;
  if (cats) {
    const every = Math.max(1, Math.ceil(cats.length * 14 / Math.max(pixels, 1)));
    ax.ticks = cats.map((c, i) => [i, c]).filter(t => t[0] % every === 0);
  } else if (tv) {
    const text = ax.spec.ticktext || tv.map(v => fmt(v, ".4g"));
    ax.ticks = tv.map((v, i) => [v, text[i]]);
  } else {
    ax.ticks = niceTicks(lo, hi, Math.max(2, Math.round(pixels / 70))).map(v => [v, fmt(v, ".4g")]);
  }
  ax.ticks = ax.ticks.filter(t => t[0] >= lo - 1e-9 && t[0] <= hi + 1e-9);
  return ax;
}
function categories(values, order, into) {
  for (const v of values) if (typeof v === "string" && !into.includes(v)) into.push(v);
  if (order === "category ascending") into.sort();
  return into;
}
function pos(cats, v) { return cats && typeof v === "string" ? cats.indexOf(v) : v; }

function drawChart(box, fig, width) {
  box.__fig = fig;
  const L = fig.layout || {}, data = fig.data || [];
  const W = Math.max(280, width || box.clientWidth || 560), H = L.height || 340;
  const m = Object.assign({l: 60, r: 20, t: 10, b: 50}, L.margin || {});
  const xs = L.xaxis || {}, ys = L.yaxis || {};
  const bar = data.some(d => d.type === "contour") ? 76 : 0;
  const X0 = m.l, X1 = W - m.r - bar, Y0 = H - m.b, Y1 = m.t;
  // categories and values along each axis
  const xcat = [], ycat = [], xv = [], yv = [];
  let xzero = false, yzero = false;
  for (const d of data) {
    if (d.type === "bar" && d.orientation === "h") {
      categories(d.y, ys.categoryorder, ycat);
      xzero = true;
      d.x.forEach((v, i) => { const b = d.base ? d.base[i] : 0; xv.push(b, b + v); });
    } else if (d.type === "bar") {
      categories(d.x, xs.categoryorder, xcat);
      yzero = true;
      yv.push(...d.y);
    } else if (d.type === "contour") {
      const half = a => a.length > 1 ? (a[1] - a[0]) / 2 : 0.5;
      xv.push(d.x[0] - half(d.x), d.x[d.x.length - 1] + half(d.x));
      yv.push(d.y[0] - half(d.y), d.y[d.y.length - 1] + half(d.y));
    } else {
      categories(d.x, xs.categoryorder, xcat);
      categories(d.y, ys.categoryorder, ycat);
      for (const v of d.x) if (typeof v === "number") xv.push(v);
      for (const v of d.y) if (typeof v === "number") yv.push(v);
    }
  }
  const zoom = box.__zoom || null;
  const ax = axis(xs, xv, xcat.length ? xcat : null, xzero, X1 - X0, zoom && zoom.x);
  const ay = axis(ys, yv, ycat.length ? ycat : null, yzero, Y0 - Y1, zoom && zoom.y);
  const sx = v => X0 + (v - ax.lo) / (ax.hi - ax.lo) * (X1 - X0);
  const sy = v => Y0 - (v - ay.lo) / (ay.hi - ay.lo) * (Y0 - Y1);
  const px = v => sx(pos(xcat.length ? xcat : null, v));
  const py = v => sy(pos(ycat.length ? ycat : null, v));
  const svg = S("svg", {class: "chart", width: W, height: H, viewBox: "0 0 " + W + " " + H});
  const clip = "clip" + (++CLIP);
  S("rect", {x: X0, y: Y1, width: X1 - X0, height: Y0 - Y1}, S("clipPath", {id: clip}, svg));
  S("rect", {x: X0, y: Y1, width: X1 - X0, height: Y0 - Y1, fill: "#fafbfc"}, svg);
  // grid, ticks and titles
  const grid = S("g", {stroke: xs.gridcolor || "#e3e8ec", "stroke-width": 1}, svg);
  const top = xs.side === "top";
  if (xs.visible !== false) {
    const g = S("g", {class: "xtick", "font-size": 11, fill: "#444", "text-anchor": "middle"}, svg);
    for (const [v, label] of ax.ticks) {
      const x = sx(v);
      S("line", {x1: x, x2: x, y1: Y1, y2: Y0}, grid);
      T(g, x, top ? Y1 - 6 : Y0 + 15, label);
    }
    if (xs.title && xs.title.text) {
      T(svg, (X0 + X1) / 2, H - 8, xs.title.text, {"text-anchor": "middle", "font-size": 12});
    }
  }
  if (ys.visible !== false) {
    const g = S("g", {class: "ytick", "font-size": 11, fill: "#444", "text-anchor": "end"}, svg);
    for (const [v, label] of ay.ticks) {
      const y = sy(v);
      S("line", {x1: X0, x2: X1, y1: y, y2: y}, grid);
      T(g, X0 - 6, y + 4, label);
    }
    if (ys.title && ys.title.text) {
      T(svg, 0, 0, ys.title.text, {"text-anchor": "middle", "font-size": 12,
        transform: "translate(14," + (Y0 + Y1) / 2 + ") rotate(-90)"});
    }
  }
  const plot = S("g", {"clip-path": "url(#" + clip + ")"}, svg);
  const targets = [];  // [kind, trace, index, x, y, (w, h)]
  data.forEach((d, ti) => {
    const g = S("g", {class: "trace", "data-name": d.name || ""}, plot);
    if (d.type === "contour") return contour(g, svg, d, ti, sx, sy, X1, Y0, Y1, targets);
    const paths = new Map();
    const add = (color, piece) => {
      const list = paths.get(color);
      if (list) list.push(piece); else paths.set(color, [piece]);
    };
    let count = 0;
    if (d.type === "bar") {
      const colors = (d.marker || {}).color || "#457b9d";
      const h = d.orientation === "h";
      const band = (h ? Y0 - Y1 : X1 - X0) / ((h ? ycat : xcat).length || 1) * 0.8;
      (h ? d.y : d.x).forEach((c, i) => {
        const v = h ? d.x[i] : d.y[i];
        if (v === null) return;
        const base = d.base ? d.base[i] : 0;
        let x, y, w, hh;
        if (h) { x = sx(base); w = sx(base + v) - x; y = py(c) - band / 2; hh = band; }
        else {
          y = sy(Math.max(v, 0)); hh = sy(Math.min(v, 0)) - y; x = px(c) - band / 2; w = band;
        }
        if (w < 0) { x += w; w = -w; }
        add(Array.isArray(colors) ? colors[i] : colors,
            "M" + x.toFixed(1) + " " + y.toFixed(1) + "h" + Math.max(w, 0.8).toFixed(1)
            + "v" + hh.toFixed(1) + "h" + (-Math.max(w, 0.8)).toFixed(1) + "Z");
        targets.push(["bar", ti, i, x, y, w, hh]);
        count++;
      });
      const line = (d.marker || {}).line;
      paths.forEach((list, color) => S("path", {d: list.join(""), fill: color,
        stroke: line ? line.color : "none", "stroke-width": line ? line.width : 0}, g));
    } else if (d.mode === "lines") {
      const ln = d.line || {};
      let p = "", on = false, prev = null;
      d.x.forEach((xv, i) => {
        const yv = d.y[i];
        if (xv === null || yv === null || xv === undefined || yv === undefined) {
          on = false;
          return;
        }
        const x = px(xv).toFixed(1), y = py(yv).toFixed(1);
        if (!on) p += "M" + x + " " + y;
        else if (ln.shape === "hv") p += "H" + x + "V" + y;
        else p += "L" + x + " " + y;
        on = true; prev = i; count++;
      });
      S("path", {d: p, fill: "none", stroke: ln.color || "#264653", "stroke-width": ln.width || 1.5,
                 opacity: d.opacity === undefined ? 1 : d.opacity}, g);
      if (d.hover) d.x.forEach((xv, i) => {
        if (xv !== null && d.y[i] !== null) targets.push(["point", ti, i, px(xv), py(d.y[i]), 9]);
      });
    } else {
      const mk = d.marker || {}, r = (mk.size || 6) / 2, cross = mk.symbol === "x";
      const cs = Array.isArray(mk.color) ? mk.color : null;
      let lo = Infinity, hi = -Infinity;
      if (cs) for (const c of cs) { if (c < lo) lo = c; if (c > hi) hi = c; }
      d.x.forEach((xv, i) => {
        const yv = d.y[i];
        if (xv === null || yv === null) return;
        const x = px(xv), y = py(yv);
        if (x < X0 - r || x > X1 + r || y < Y1 - r || y > Y0 + r) return;  // zoomed out of view
        const shade = cs && hi > lo ? Math.round((cs[i] - lo) / (hi - lo) * 15) / 15 : 0.5;
        const color = cs ? rgb(viridis(shade)) : (mk.color || "#2a9d8f");
        add(color, cross
          ? "M" + (x - r).toFixed(1) + " " + (y - r).toFixed(1) + "l" + 2 * r + " " + 2 * r
            + "m0 " + -2 * r + "l" + -2 * r + " " + 2 * r
          : "M" + (x - r).toFixed(1) + " " + y.toFixed(1) + "a" + r + " " + r + " 0 1 0 " + 2 * r
            + " 0a" + r + " " + r + " 0 1 0 " + -2 * r + " 0");
        targets.push(["point", ti, i, x, y]);
        count++;
      });
      const line = mk.line;
      paths.forEach((list, color) => S("path", cross
        ? {d: list.join(""), fill: "none", stroke: color, "stroke-width": 1.6,
           opacity: mk.opacity === undefined ? 1 : mk.opacity}
        : {d: list.join(""), fill: color, "fill-opacity": mk.opacity === undefined ? 1 : mk.opacity,
           stroke: line ? line.color : "none", "stroke-width": line ? line.width : 0}, g));
    }
    g.setAttribute("data-points", count);
  });
  for (const a of L.annotations || []) {
    const f = a.font || {};
    T(svg, sx(a.x) + (a.xshift || 0), sy(a.y) + 4, a.text,
      {"font-size": f.size || 11, fill: f.color || "#333",
       "text-anchor": a.xanchor === "left" ? "start" : "middle"});
  }
  interact(box, svg, fig, targets, ax, ay, X0, X1, Y0, Y1);
  const parts = [svg];
  if (L.showlegend) {
    const legend = document.createElement("div");
    legend.className = "legend";
    data.forEach(d => {
      if (!d.name) return;
      const mk = d.marker || {}, ln = d.line || {};
      const color = typeof mk.color === "string" ? mk.color : ln.color || "#2a9d8f";
      const item = document.createElement("span"), sw = document.createElement("i");
      sw.style.background = color;
      item.append(sw, document.createTextNode(d.name));
      legend.append(item);
    });
    parts.push(legend);
  }
  if (zoom) {
    const note = document.createElement("div");
    note.className = "zoomed";
    note.textContent = "zoomed: double-click to zoom out";
    parts.push(note);
  }
  box.replaceChildren(...parts);
}

function contour(g, svg, d, ti, sx, sy, X1, Y0, Y1, targets) {
  const nx = d.x.length, ny = d.y.length;
  let lo = Infinity, hi = -Infinity;
  for (const row of d.z) {
    for (const v of row) if (v !== null) { if (v < lo) lo = v; if (v > hi) hi = v; }
  }
  const levels = 10, span = hi > lo ? hi - lo : 1;
  const level = v => Math.min(levels - 1, Math.floor((v - lo) / span * levels));
  const hx = nx > 1 ? (d.x[1] - d.x[0]) / 2 : 0.5, hy = ny > 1 ? (d.y[1] - d.y[0]) / 2 : 0.5;
  const left = sx(d.x[0] - hx), right = sx(d.x[nx - 1] + hx);
  const bottom = sy(d.y[0] - hy), topp = sy(d.y[ny - 1] + hy);
  const cw = Math.max(2, Math.min(320, Math.round(right - left)));
  const ch = Math.max(2, Math.min(260, Math.round(bottom - topp)));
  const canvas = document.createElement("canvas");
  canvas.width = cw; canvas.height = ch;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(cw, ch);
  const z = (i, j) => {
    const v = d.z[Math.max(0, Math.min(ny - 1, j))][Math.max(0, Math.min(nx - 1, i))];
    return v === null ? lo : v;
  };
  const colors = [];
  for (let k = 0; k < levels; k++) colors.push(viridis((k + 0.5) / levels));
  for (let py = 0; py < ch; py++) {
    // cell-centre coordinates: the first centre at 0.5 of a cell from the edge
    const fy = Math.max(0, Math.min(ny - 1, (1 - (py + 0.5) / ch) * ny - 0.5));
    const j = Math.min(ny - 2, Math.floor(fy)), ty = fy - Math.max(j, 0);
    for (let px = 0; px < cw; px++) {
      const fx = Math.max(0, Math.min(nx - 1, (px + 0.5) / cw * nx - 0.5));
      const i = Math.min(nx - 2, Math.floor(fx)), tx = fx - Math.max(i, 0);
      const i0 = Math.max(i, 0), j0 = Math.max(j, 0);
      const a = z(i0, j0), b = z(i0 + 1, j0), c = z(i0, j0 + 1), e = z(i0 + 1, j0 + 1);
      const v = (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + e * tx) * ty;
      const col = colors[level(v)], o = (py * cw + px) * 4;
      img.data[o] = col[0]; img.data[o + 1] = col[1]; img.data[o + 2] = col[2];
      img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  S("image", {href: canvas.toDataURL(), x: left, y: topp, width: right - left,
              height: bottom - topp, preserveAspectRatio: "none"}, g);
  g.setAttribute("data-points", nx * ny);
  d.x.forEach((xv, i) => d.y.forEach((yv, j) => {
    if (d.z[j][i] !== null) targets.push(["cell", ti, [j, i], sx(xv - hx), sy(yv + hy),
                                          sx(xv + hx) - sx(xv - hx), sy(yv - hy) - sy(yv + hy)]);
  }));
  // the colour bar
  const cb = S("g", {"font-size": 10, fill: "#444"}, svg), x = X1 + 14, h = (Y0 - Y1) / levels;
  for (let k = 0; k < levels; k++) {
    S("rect", {x: x, y: Y0 - (k + 1) * h, width: 12, height: h + 0.5, fill: rgb(colors[k])}, cb);
  }
  T(cb, x + 16, Y0, fmt(lo, ".3g"));
  T(cb, x + 16, Y1 + 9, fmt(hi, ".3g"));
  const title = (d.colorbar && d.colorbar.title && d.colorbar.title.text) || "";
  T(cb, 0, 0, title, {"text-anchor": "middle",
    transform: "translate(" + (x + 50) + "," + (Y0 + Y1) / 2 + ") rotate(90)"});
}

function interact(box, svg, fig, targets, ax, ay, X0, X1, Y0, Y1) {
  const local = e => {
    const r = svg.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  const show = (e, hit) => {
    const t = tip();
    if (!hit) { t.style.display = "none"; return; }
    const d = fig.data[hit[1]], i = hit[2];
    const get = k => k === "z" ? d.z[i[0]][i[1]]
      : k === "color" ? (d.marker || {}).color[i] : (d[k] || [])[i];
    t.textContent = d.hover ? fill(d.hover, get) : (d.name || "");
    t.style.display = d.hover || d.name ? "block" : "none";
    t.style.left = (e.clientX + 12) + "px";
    t.style.top = (e.clientY + 12) + "px";
  };
  let drag = null;
  const sel = S("rect", {fill: "rgba(38,70,83,.12)", stroke: "#264653", "stroke-width": 0.5,
                         visibility: "hidden"}, svg);
  svg.addEventListener("mousemove", e => {
    const [x, y] = local(e);
    if (drag) {
      sel.setAttribute("x", Math.min(drag[0], x)); sel.setAttribute("y", Math.min(drag[1], y));
      sel.setAttribute("width", Math.abs(x - drag[0]));
      sel.setAttribute("height", Math.abs(y - drag[1]));
      sel.setAttribute("visibility", "visible");
      return;
    }
    let hit = null, best = 100;  // within 10 px
    for (const t of targets) {
      if (t[0] === "point") {
        const d2 = (t[3] - x) ** 2 + (t[4] - y) ** 2 + (t[5] || 0);  // a line's: behind markers
        if (d2 < best) { best = d2; hit = t; }
      } else if (!hit && x >= t[3] && x <= t[3] + t[5] && y >= t[4] && y <= t[4] + t[6]) {
        hit = t;
      }
    }
    show(e, hit);
  });
  svg.addEventListener("mouseleave", () => { tip().style.display = "none"; drag = null; });
  svg.addEventListener("mousedown", e => {
    const [x, y] = local(e);
    if (x >= X0 && x <= X1 && y >= Y1 && y <= Y0) { drag = [x, y]; e.preventDefault(); }
  });
  svg.addEventListener("mouseup", e => {
    if (!drag) return;
    const [x, y] = local(e), start = drag;
    drag = null;
    if (Math.abs(x - start[0]) < 6 || Math.abs(y - start[1]) < 6) {
      sel.setAttribute("visibility", "hidden");
      return;
    }
    const ux = v => ax.lo + (v - X0) / (X1 - X0) * (ax.hi - ax.lo);
    const uy = v => ay.lo + (Y0 - v) / (Y0 - Y1) * (ay.hi - ay.lo);
    box.__zoom = {x: [ux(Math.min(x, start[0])), ux(Math.max(x, start[0]))],
                  y: [uy(Math.max(y, start[1])), uy(Math.min(y, start[1]))]};
    drawChart(box, fig);
  });
  svg.addEventListener("dblclick", () => {
    if (box.__zoom) { box.__zoom = null; drawChart(box, fig); }
  });
}
let RESIZE = 0;
window.addEventListener("resize", () => {
  clearTimeout(RESIZE);
  RESIZE = setTimeout(() => document.querySelectorAll(".plot").forEach(b => {
    if (b.__fig) drawChart(b, b.__fig);
  }), 150);
});
"""
