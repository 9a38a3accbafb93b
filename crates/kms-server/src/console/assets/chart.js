// Line charts drawn as SVG, with a text summary for screen readers.
const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
}

/** A chart of `series` ([{name, values: [[t, y]]}]) titled `title`, y formatted by `fmt`. */
export function lineChart(title, series, fmt) {
  const W = 420; const H = 200; const L = 52; const R = 12; const T = 10; const B = 24;
  const all = series.flatMap((s) => s.values);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  root.append(svg('title', {}, title));
  if (all.length === 0) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No samples yet'));
    return root;
  }
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]), t0 + 1);
  const ymax = niceMax(Math.max(...all.map((p) => p[1])));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / ymax) * (H - T - B);
  for (const f of [0, 0.5, 1]) {
    root.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(ymax * f), y2: y(ymax * f) }));
    root.append(svg('text', { x: L - 4, y: y(ymax * f) + 4, 'text-anchor': 'end' }, fmt(ymax * f)));
  }
  root.append(svg('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  root.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  const time = (t) => new Date(t).toISOString().slice(11, 19);
  root.append(svg('text', { x: L, y: H - 6 }, time(t0)));
  root.append(svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, `${time(t1)} UTC`));
  series.forEach((s, i) => {
    const d = s.values.map((p, j) => `${j ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    root.append(svg('path', { class: `line s${i}`, d }));
    // Dots show where the samples are (a single sample draws no line).
    if (s.values.length <= 90) {
      for (const p of s.values) root.append(svg('circle', { class: `dot s${i}`, cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 2.5 }));
    }
  });
  return root;
}
