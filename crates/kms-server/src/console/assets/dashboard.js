// Dashboard: request rate, error rate and latency over the last hour, from the server's own
// metrics (sampled on the server every few seconds), redrawn while the page is open.
import { metrics } from './api.js';
import { el, table, errorBox, heading, show } from './ui.js';
import { lineChart } from './chart.js';

function chart(title, series, fmt, summary) {
  return el('figure', { class: 'chart' },
    el('h2', {}, title),
    lineChart(title, series, fmt),
    el('figcaption', { class: 'legend' }, summary));
}

export async function dashboardPage(page) {
  const body = el('div', {});
  const draw = async () => {
    let data;
    try {
      data = await metrics();
    } catch (err) {
      if (err.status === 401) throw err;
      body.replaceChildren(errorBox(err));
      return;
    }
    const points = data.points || [];
    const last = points[points.length - 1] || { requestsPerSecond: 0, errorRate: 0, meanLatencyMs: 0, p95LatencyMs: 0 };
    const v = (name) => points.map((p) => [p.t, p[name]]);
    body.replaceChildren(
      el('p', { class: 'hint' }, `Sampled every ${data.intervalMillis / 1000} s on this node; ${points.length} intervals shown.`),
      el('div', { class: 'charts' },
        chart('Requests per second', [{ name: 'requests/s', values: v('requestsPerSecond') }], (n) => n.toFixed(1),
          `Latest: ${last.requestsPerSecond.toFixed(2)} requests per second.`),
        chart('Error rate', [{ name: 'errors', values: points.map((p) => [p.t, p.errorRate * 100]) }], (n) => `${n < 10 ? n.toFixed(1) : n.toFixed(0)}%`,
          `Latest: ${(last.errorRate * 100).toFixed(1)}% of requests failed.`),
        chart('Latency (ms)', [{ name: 'mean', values: v('meanLatencyMs') }, { name: 'p95', values: v('p95LatencyMs') }], (n) => n.toFixed(1),
          `Blue: mean, orange: 95th percentile (bucket bound). Latest mean ${last.meanLatencyMs.toFixed(2)} ms, p95 ≤ ${last.p95LatencyMs} ms.`)),
      el('details', {}, el('summary', {}, 'Samples as a table'),
        table('Last 20 intervals', ['End (UTC)', 'Requests/s', 'Error rate', 'Mean ms', 'p95 ms'],
          points.slice(-20).reverse().map((p) => [new Date(p.t).toISOString(), p.requestsPerSecond.toFixed(2),
            `${(p.errorRate * 100).toFixed(1)}%`, p.meanLatencyMs.toFixed(2), String(p.p95LatencyMs)]))));
  };
  show(page, heading('Dashboard'), body);
  await draw();
  const timer = setInterval(() => { draw().catch(() => {}); }, 5000);
  return () => clearInterval(timer);
}
