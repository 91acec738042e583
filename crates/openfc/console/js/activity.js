// Charts from this node's in-memory time series (`/console/api/charts`): one bucket per 10 s for the last
// hour, refreshed every 5 s. Each node keeps its own, so behind a load balancer a page shows the node that
// answered it; the charts say which.

import { charts } from './api.js';
import { h, clear, showError } from './ui.js';
import { lineChart } from './chart.js';

const REFRESH_MS = 5000;

function window15(data) {
  // The last 15 minutes: enough to see a burst; the series keeps an hour.
  const to = data.now;
  return { to, from: to - 15 * 60 + data.bucketSeconds, step: data.bucketSeconds };
}

function live(where, draw, cleanups, params) {
  let timer = null;
  const tick = async () => {
    try { draw(await charts(params)); } catch (e) { showError(where, e); }
  };
  tick();
  timer = setInterval(tick, REFRESH_MS);
  cleanups.push(() => clearInterval(timer));
}

/** Invocations and errors of one function. */
export function functionChart(svc, fn, cleanups) {
  const where = h('div', { id: 'fn-chart' }, 'Loading…');
  const note = h('p', { class: 'note', id: 'fn-chart-node' });
  live(where, (data) => {
    const f = data.functions.find((x) => x.service === svc && x.function === fn);
    const points = f ? f.points : [];
    const { from, to, step } = window15(data);
    note.textContent = `This node's view (node ${data.node}): calls it ran itself, per ${data.bucketSeconds} s.`;
    clear(where, lineChart({
      title: `Invocations and errors of ${fn}`, from, to, step,
      series: [
        { name: 'invocations', points: points.map(([t, n]) => [t, n]) },
        { name: 'errors', points: points.map(([t, , e]) => [t, e]) },
      ],
    }));
    where.dataset.total = String(points.reduce((n, p) => n + p[1], 0));
  }, cleanups, { service: svc, function: fn });
  return h('section', { 'aria-labelledby': 'chart-title' }, h('h2', { id: 'chart-title' }, 'Activity'), note, where);
}

export async function activityView(main) {
  const cleanups = [];
  const note = h('p', { class: 'note', id: 'activity-node' });
  const fns = h('div', { id: 'activity-functions' });
  const node = h('div', { id: 'activity-node-charts', class: 'grid' });
  clear(main, h('h1', {}, 'Activity'), note,
    h('section', { 'aria-labelledby': 'act-fn' }, h('h2', { id: 'act-fn' }, 'Invocations by function'), fns),
    h('section', { 'aria-labelledby': 'act-node' }, h('h2', { id: 'act-node' }, 'This node'), node));
  live(fns, (data) => {
    const { from, to, step } = window15(data);
    note.textContent = `This node's view (node ${data.node}); each node of a cluster keeps its own hour, per ${data.bucketSeconds} s.`;
    const top = [...data.functions]
      .map((f) => ({ ...f, total: f.points.reduce((n, p) => n + p[1], 0) }))
      .sort((a, b) => b.total - a.total)
      .slice(0, 6);
    clear(fns, top.length ? [
      lineChart({ title: 'Invocations per function', from, to, step, series: top.map((f) => ({ name: `${f.service}/${f.function}`, points: f.points.map(([t, n]) => [t, n]) })) }),
      lineChart({ title: 'Errors per function', from, to, step, series: top.map((f) => ({ name: `${f.service}/${f.function}`, points: f.points.map(([t, , e]) => [t, e]) })) }),
    ] : h('p', { class: 'empty' }, 'No invocations on this node in the last hour.'));
    const phases = Object.entries(data.coldStartPhases || {}).map(([phase, pts]) => ({ name: phase, points: pts.map(([t, , ms]) => [t, ms]) }));
    clear(node,
      lineChart({ title: 'Cold-start phases (mean)', unit: ' ms', from, to, step, fill: null, series: phases }),
      lineChart({ title: 'Instances', from, to, step, fill: null, series: [
        { name: 'alive', points: data.instances.map(([t, a]) => [t, a]) },
        { name: 'busy', points: data.instances.map(([t, , b]) => [t, b]) },
      ] }),
      lineChart({ title: 'Async queue depth', from, to, step, fill: null, series: [{ name: 'events due', points: data.asyncQueueDepth }] }));
  }, cleanups, {});
  return () => cleanups.forEach((c) => c());
}
