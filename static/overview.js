// The first screen: what needs a person now (open circuits, disabled channels, deliveries
// waiting too long), deliveries per hour over 24 hours by status as a chart, the day's counts
// (what noise control held back counted apart, never as failures) and each channel's attempt
// times. Refreshes every 15 s while the tab is shown, in place (no flicker, scroll kept).

import { get } from './api.js';
import { hourlyChart } from './chart.js';
import { clear, h, table, when } from './ui.js';

const REFRESH_MS = 15000;

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
const logOf = (c) => `#/logs?${new URLSearchParams({ channel_id: c.id })}`;

const BADGE = { 'disabled-router': 'disabled by the router', disabled: 'disabled', open: 'circuit open', half_open: 'probing', waiting: 'waiting' };

/** Why a channel needs attention, or null: its circuit, a disable, or deliveries waiting too long. */
function attention(c, s, thresholdMin) {
  const health = c.health || {};
  const reasons = [];
  if (!c.enabled && c.disabled_reason) reasons.push({ kind: 'disabled-router', text: `Disabled by the router on ${when(c.disabled_at)}: ${c.disabled_reason}` });
  else if (!c.enabled) reasons.push({ kind: 'disabled', text: 'Disabled by a person: nothing is sent to it' });
  if (c.enabled && health.state === 'open') reasons.push({ kind: 'open', text: 'Circuit open: nothing is sent until a probe succeeds' });
  if (c.enabled && health.state === 'half_open') reasons.push({ kind: 'half_open', text: 'Circuit half-open: one probe is on its way' });
  if (s && s.pending_over_threshold) reasons.push({ kind: 'waiting', text: `${plural(s.pending_over_threshold, 'delivery has', 'deliveries have')} waited longer than ${thresholdMin} minutes` });
  return reasons.length ? reasons : null;
}

function attentionItem(c, s, reasons) {
  const health = c.health || {};
  const waiting = (s && s.pending) || (c.stats && c.stats.pending) || 0;
  const facts = [
    ['Failures in a row', String(health.consecutive_failures || 0)],
    ['Waiting', plural(waiting, 'delivery', 'deliveries')],
    ['Next probe', c.enabled && health.state === 'open' ? when(health.open_until) : (c.enabled && health.state === 'half_open' ? 'now' : '—')],
  ];
  const byRouter = reasons.some((r) => r.kind === 'disabled-router');
  return h('li.attention-item', { dataset: { attention: c.id, reasons: reasons.map((r) => r.kind).join(' ') } },
    h('div.attention-head', {},
      h('a.attention-name', { href: logOf(c), 'aria-label': `${c.name}: its alert log` }, c.name),
      reasons.map((r) => h(`span.badge.s-${r.kind === 'waiting' ? 'pending' : (r.kind.startsWith('disabled') ? 'off' : 'circuit')}`, {}, BADGE[r.kind]))),
    // The router's own disable keeps the words people (and their tests) know it by.
    byRouter ? h('p', { dataset: { disabledChannel: c.id } },
      h('strong', {}, `${c.name} was disabled by the router`), ` on ${when(c.disabled_at)}: ${c.disabled_reason}. `,
      h('a', { href: '#/channels' }, 'Fix the receiver, then enable the channel under Channels.')) : null,
    h('ul.attention-reasons', {}, reasons.filter((r) => r.kind !== 'disabled-router').map((r) => h('li', {}, r.text))),
    h('dl.facts.attention-facts', {}, facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('a', { href: logOf(c) }, `Alert log of ${c.name}`));
}

function build(channels, stats) {
  const byId = new Map(stats.channels.map((s) => [s.channel_id, s]));
  const thresholdMin = Math.round(stats.pending_threshold_s / 60);
  const needing = channels.map((c) => [c, byId.get(c.id), attention(c, byId.get(c.id), thresholdMin)]).filter(([, , r]) => r);
  // Counted from the same hourly buckets the chart draws, deleted channels' deliveries included,
  // so a tile never says less than the chart and the alert log show.
  const total = (buckets, key) => (buckets || []).reduce((n, b) => n + (b[key] || 0), 0);
  const sum = (key) => total(stats.hourly, key);
  const waitingNow = stats.channels.reduce((n, s) => n + s.pending, 0);
  const tile = (label, n, kind) => h(`div.tile${kind ? `.${kind}` : ''}`, {}, h('div.n', {}, String(n)), h('div.muted', {}, label));
  // Grouped, suppressed and silenced: each a link to those deliveries in the alert log.
  const held = (status, label) => h('a.tile.held', { href: `#/logs?status=${status}`, dataset: { held: status } },
    h('div.n', {}, String(sum(status))), h('div.muted', {}, label));

  const attentionList = needing.length
    ? h('ul.attention', { 'aria-label': 'Channels that need attention' }, needing.map(([c, s, r]) => attentionItem(c, s, r)))
    : h('p.all-well', { dataset: { attention: 'none' } }, channels.length
      ? `Nothing needs attention: every circuit is closed, every channel is enabled, and no delivery has waited longer than ${thresholdMin} minutes.`
      : 'Nothing needs attention yet: there are no channels. Add one under Channels.');

  const failed = sum('failed');
  // Never "nothing failed" while a circuit is open or deliveries wait.
  let failedNote = null;
  if (failed) failedNote = null;
  else if (needing.length) failedNote = `No delivery used up its retries in the last 24 hours, but ${plural(needing.length, 'channel needs', 'channels need')} attention (above).`;
  else if (waitingNow) failedNote = `No delivery used up its retries in the last 24 hours; ${plural(waitingNow, 'delivery waits for its', 'deliveries wait for their')} next attempt.`;
  else if (channels.length) failedNote = 'No channel failed in the last 24 hours.';
  const timeRows = channels.map((c) => {
    const s = byId.get(c.id) || {};
    const ms = (v) => (v === null || v === undefined ? '—' : `${v} ms`);
    return h('tr', { dataset: { timesOf: c.id } },
      h('td', {}, h('a', { href: logOf(c) }, c.name)),
      h('td.num', {}, String(total(s.hourly, 'succeeded'))),
      h('td.num', {}, String(total(s.hourly, 'failed'))),
      h('td.num', {}, String(s.pending || 0)),
      h('td.num.optional', {}, String(s.attempts || 0)),
      h('td.num', {}, ms(s.p50_ms)),
      h('td.num', {}, ms(s.p95_ms)));
  });
  return [
    h('h1', {}, 'Overview'),
    h('section.card.needs-attention', { 'aria-labelledby': 'needs-attention' },
      h('h2#needs-attention', {}, needing.length ? `Needs attention (${needing.length})` : 'Needs attention'),
      attentionList),
    h('div.tiles', {},
      tile('Succeeded, last 24 h', sum('succeeded')),
      tile('Failed, last 24 h', failed, failed ? 'bad' : ''),
      tile('Pending, last 24 h', sum('pending')),
      tile('Waiting now (any age)', waitingNow, needing.length && waitingNow ? 'bad' : '')),
    failedNote ? h('p.muted', {}, failedNote) : null,
    h('h2', {}, 'Deliveries per hour, last 24 hours'),
    hourlyChart(stats.hourly),
    h('h2', {}, 'Held back by noise control, last 24 h'),
    h('p.muted', {}, 'Not sent on their own, and not failures: grouped into one notification, suppressed as repeats, or held by a silence.'),
    h('div.tiles.three', {},
      held('grouped', 'Grouped into notifications'),
      held('suppressed', 'Suppressed repeats'),
      held('silenced', 'Silenced')),
    h('h2', {}, 'Channels, last 24 hours'),
    h('p.muted', {}, 'Attempt time: how long each request to the receiver took, p50 (half were faster) and p95 (one in twenty was slower).'),
    table(['Channel', h('th.num', {}, 'Succeeded'), h('th.num', {}, 'Failed'), h('th.num', {}, 'Waiting'),
      h('th.num.optional', {}, 'Attempts'), h('th.num', {}, 'p50'), h('th.num', {}, 'p95')], timeRows,
    'No channels yet: add one under Channels.'),
  ];
}

export async function render(view) {
  const load = async () => {
    const [{ items }, stats] = await Promise.all([get('/channels'), get('/stats/deliveries?hours=24')]);
    return build(items, stats);
  };
  clear(view).append(...(await load()).filter(Boolean));
  // Refreshed in place: the new content replaces the old in one step, so nothing flickers and
  // the page keeps its scroll position; an open "numbers" table stays open.
  let busy = false;
  const refresh = async () => {
    if (document.hidden || busy || !view.isConnected) return;
    busy = true;
    try {
      const open = view.querySelector('details.chart-table') && view.querySelector('details.chart-table').open;
      const fresh = (await load()).filter(Boolean);
      const y = window.scrollY;
      view.replaceChildren(...fresh);
      if (open) view.querySelector('details.chart-table').open = true;
      window.scrollTo(window.scrollX, y);
    } catch { /* shown again at the next refresh */ } finally { busy = false; }
  };
  const timer = setInterval(refresh, REFRESH_MS);
  const shown = () => { if (!document.hidden) refresh(); };
  document.addEventListener('visibilitychange', shown);
  return () => { clearInterval(timer); document.removeEventListener('visibilitychange', shown); };
}
