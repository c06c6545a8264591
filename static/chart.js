// Hand-made SVG pictures of `GET /stats/deliveries`: the Overview's stacked bars of deliveries per
// hour by status, and the Channels page's sparkline. No library: rectangles and a polyline whose
// geometry is set as SVG attributes, colours from style.css classes (the CSP allows no inline
// style). Each picture has a text alternative: a title and a summary, and the bars a table.

import { h } from './ui.js';

const SVG = 'http://www.w3.org/2000/svg';

/** The statuses drawn, bottom to top; noise control's three are one "held back" band. */
export const SERIES = [
  { key: 'succeeded', label: 'Succeeded', of: (b) => b.succeeded },
  { key: 'failed', label: 'Failed', of: (b) => b.failed },
  { key: 'pending', label: 'Pending', of: (b) => b.pending },
  { key: 'held', label: 'Held back (grouped, suppressed, silenced)', of: (b) => b.grouped + b.suppressed + b.silenced },
  { key: 'cancelled', label: 'Cancelled', of: (b) => b.cancelled },
];

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

/** "14:00", in the browser's own time zone. */
function hourLabel(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

const total = (b) => SERIES.reduce((n, s) => n + s.of(b), 0);

/** One sentence saying what the bars show, for screen readers and the chart's title. */
export function summary(hourly) {
  const sums = SERIES.map((s) => [s, hourly.reduce((n, b) => n + s.of(b), 0)]);
  const all = sums.reduce((n, [, v]) => n + v, 0);
  if (!all) return `No deliveries in the last ${hourly.length} hours.`;
  const peak = hourly.reduce((best, b) => (total(b) > total(best) ? b : best), hourly[0]);
  const parts = sums.filter(([, v]) => v).map(([s, v]) => `${v} ${s.label.toLowerCase()}`);
  return `${all} ${all === 1 ? 'delivery' : 'deliveries'} in the last ${hourly.length} hours: ${parts.join(', ')}. Busiest hour: ${hourLabel(peak.hour)} with ${total(peak)}.`;
}

/**
 * Stacked bars, one per hour, with a legend (each status with its total), hour labels under the
 * bars (HTML, so they stay readable at any width), and the numbers as a table to open.
 */
export function hourlyChart(hourly) {
  const width = 24 * 10;
  const height = 100;
  const max = Math.max(1, ...hourly.map(total));
  const slot = width / hourly.length;
  const bars = svg('g');
  hourly.forEach((b, i) => {
    let y = height;
    for (const s of SERIES) {
      const v = s.of(b);
      if (!v) continue;
      const bar = height * (v / max);
      y -= bar;
      bars.append(svg('rect', { x: i * slot + slot * 0.12, y, width: slot * 0.76, height: bar, class: `bar-${s.key}` },
        svg('title', {}, `${hourLabel(b.hour)}: ${v} ${s.label.toLowerCase()}`)));
    }
  });
  const text = summary(hourly);
  const picture = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': text, class: 'chart-bars' },
    svg('title', {}, text), svg('line', { x1: 0, y1: height, x2: width, y2: height, class: 'axis' }), bars);
  const ticks = hourly.filter((_, i) => i % 6 === 0 || i === hourly.length - 1);
  // Cancelled (a channel deleted with deliveries waiting) only when there are some.
  const legend = SERIES.map((s) => [s, hourly.reduce((n, b) => n + s.of(b), 0)]).filter(([s, sum]) => sum || s.key !== 'cancelled')
    .map(([s, sum]) => h('li', { dataset: { series: s.key } }, h(`span.swatch.bar-${s.key}`, { 'aria-hidden': 'true' }), `${s.label}: ${sum}`));
  const rows = hourly.map((b) => h('tr', {}, h('td', {}, hourLabel(b.hour)), SERIES.map((s) => h('td.num', {}, String(s.of(b))))));
  return h('figure.chart', { dataset: { chart: 'hourly' } },
    h('div.chart-scale.muted', { 'aria-hidden': 'true' }, `${max} per hour`),
    picture,
    h('div.chart-ticks.muted', { 'aria-hidden': 'true' }, ticks.map((b) => h('span', {}, hourLabel(b.hour)))),
    h('figcaption', {}, h('ul.legend', {}, legend)),
    h('details.chart-table', {}, h('summary', {}, 'The numbers, hour by hour'),
      h('div.table-wrap', {}, h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, 'Hour'), SERIES.map((s) => h('th.num', {}, s.label)))),
        h('tbody', {}, rows)))));
}

/**
 * A channel's deliveries per hour as a small line (failures marked as red dots), labelled with
 * what it shows.
 */
export function sparkline(hourly, name) {
  const width = 96;
  const height = 24;
  const counts = hourly.map(total);
  const max = Math.max(1, ...counts);
  const x = (i) => (hourly.length === 1 ? width / 2 : (i * (width - 4)) / (hourly.length - 1) + 2);
  const y = (v) => height - 2 - (v / max) * (height - 4);
  const points = counts.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const all = counts.reduce((a, b) => a + b, 0);
  const failed = hourly.reduce((n, b) => n + b.failed, 0);
  const label = `${name}: ${all} ${all === 1 ? 'delivery' : 'deliveries'} in the last ${hourly.length} hours${failed ? `, ${failed} failed` : ''}; at most ${max} in an hour`;
  const dots = hourly.map((b, i) => (b.failed ? svg('circle', { cx: x(i).toFixed(1), cy: y(counts[i]).toFixed(1), r: 2, class: 'spark-failed' }) : null)).filter(Boolean);
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label, class: 'sparkline', 'data-sparkline': all },
    svg('title', {}, label), svg('polyline', { points, class: 'spark-line' }), ...dots);
}
