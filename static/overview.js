// The first screen: deliveries of the last 24 hours by status (what noise control held back
// counted apart, never as failures), and the channels that fail.

import { get } from './api.js';
import { clear, h, onOff, table, when } from './ui.js';

export async function render(view) {
  const { items } = await get('/channels');
  const sum = (key) => items.reduce((n, c) => n + ((c.stats && c.stats[key]) || 0), 0);
  const tile = (label, n, kind) => h(`div.tile${kind ? `.${kind}` : ''}`, {}, h('div.n', {}, String(n)), h('div.muted', {}, label));
  // Grouped, suppressed and silenced: each a link to those deliveries in the alert log.
  const held = (status, label) => h('a.tile.held', { href: `#/logs?status=${status}`, dataset: { held: status } },
    h('div.n', {}, String(sum(`${status}_24h`))), h('div.muted', {}, label));
  const failing = items.filter((c) => c.stats && c.stats.failed_24h > 0);
  const rows = failing.map((c) => h('tr', {},
    h('td', {}, h('a', { href: `#/logs?${new URLSearchParams({ status: 'failed', channel_id: c.id })}` }, c.name)),
    h('td', {}, onOff(c.enabled)),
    h('td.num', {}, String(c.stats.failed_24h)),
    h('td', {}, c.stats.last_error || '—', c.stats.last_error_at ? h('div.muted', {}, when(c.stats.last_error_at)) : null)));
  // Channels the router disabled by itself: their deliveries wait until a person acts.
  const disabled = items.filter((c) => !c.enabled && c.disabled_reason);
  const notices = disabled.map((c) => h('div.notice.bad', { role: 'alert', dataset: { disabledChannel: c.id } },
    h('strong', {}, `${c.name} was disabled by the router`), ` on ${when(c.disabled_at)}: ${c.disabled_reason}. `,
    c.stats && c.stats.pending ? `${c.stats.pending} ${c.stats.pending === 1 ? 'delivery waits' : 'deliveries wait'} for it. ` : '',
    h('a', { href: '#/channels' }, 'Fix the receiver, then enable the channel under Channels.')));
  clear(view).append(
    h('h1', {}, 'Overview'),
    ...notices,
    h('div.tiles', {},
      tile('Succeeded, last 24 h', sum('succeeded_24h')),
      tile('Failed, last 24 h', sum('failed_24h'), sum('failed_24h') ? 'bad' : ''),
      tile('Pending, last 24 h', sum('pending_24h')),
      tile('Waiting now (any age)', sum('pending'))),
    h('h2', {}, 'Held back by noise control, last 24 h'),
    h('p.muted', {}, 'Not sent on their own, and not failures: grouped into one notification, suppressed as repeats, or held by a silence.'),
    h('div.tiles.three', {},
      held('grouped', 'Grouped into notifications'),
      held('suppressed', 'Suppressed repeats'),
      held('silenced', 'Silenced')),
    h('h2', {}, 'Failing channels'),
    table(['Channel', 'State', h('th.num', {}, 'Failed (24 h)'), 'Last error'], rows,
      items.length ? 'No channel failed in the last 24 hours.' : 'No channels yet: add one under Channels.'));
}
