// Line charts as inline SVG, drawn by hand: a time axis, a value axis from zero, one polyline per series and a
// legend. Each chart is an image with a text alternative (its title and latest values) for screen readers.

const NS = 'http://www.w3.org/2000/svg';
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563'];

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function clock(t) {
  const d = new Date(t * 1000);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/**
 * A chart of `series` ([{name, points: [[unixSeconds, value], ...]}]) between `from` and `to` (Unix seconds),
 * with `step` seconds per bucket; missing buckets count as `fill` (0 for counts, a gap for samples: null).
 */
export function lineChart({ title, series, from, to, step, unit = '', fill = 0 }) {
  const W = 640, H = 200, L = 44, R = 10, T = 10, B = 24;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart' });
  const latest = series.map((x) => {
    const last = x.points.length ? x.points[x.points.length - 1][1] : 0;
    return `${x.name} ${Math.round(last * 100) / 100}${unit}`;
  }).join(', ');
  svg.append(s('title', {}, `${title}. Latest: ${latest || 'no data'}`));
  let max = 0;
  for (const x of series) for (const [, v] of x.points) max = Math.max(max, v);
  max = niceMax(max);
  const X = (t) => L + ((t - from) / Math.max(1, to - from)) * (W - L - R);
  const Y = (v) => T + (1 - v / max) * (H - T - B);
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    svg.append(s('line', { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: 'gridline' }));
    svg.append(s('text', { x: L - 4, y: Y(v) + 4, 'text-anchor': 'end', class: 'axis' }, `${Math.round(v * 100) / 100}`));
  }
  for (let i = 0; i <= 4; i++) {
    const t = from + ((to - from) * i) / 4;
    svg.append(s('text', { x: X(t), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle', class: 'axis' }, clock(t)));
  }
  series.forEach((x, i) => {
    const byT = new Map(x.points.map(([t, v]) => [t, v]));
    let d = '';
    let pen = false;
    for (let t = from; t <= to; t += step) {
      const v = byT.has(t) ? byT.get(t) : fill;
      if (v === null) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`;
      pen = true;
    }
    svg.append(s('path', { d, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 1.8, class: 'series' }));
  });
  const legend = document.createElement('ul');
  legend.className = 'legend';
  series.forEach((x, i) => {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = COLORS[i % COLORS.length];
    li.append(sw, document.createTextNode(x.name));
    legend.append(li);
  });
  const fig = document.createElement('figure');
  fig.className = 'chart-box';
  const cap = document.createElement('figcaption');
  cap.textContent = title;
  fig.append(cap, svg, legend);
  return fig;
}
