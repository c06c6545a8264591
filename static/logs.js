// Alert logs: deliveries newest first, filtered and paged, refreshing while open, each with
// "Silence similar"; one delivery with every attempt and its payload, and Redeliver.

import { get, post } from './api.js';
import { badge, clear, h, severity, table, ticketLink, toast, when } from './ui.js';
import { KNOWN_TYPES } from './rules.js';
import { sentRequest } from './sent.js';

const REFRESH_MS = 2500;

/** The statuses noise control decides (SPEC section 16): final, never failures. */
const NOISE = ['grouped', 'suppressed', 'silenced'];

/** A link that leaves the row it sits in alone (rows open their own delivery when clicked). */
const inner = (href, text, data) => h('a', { href, dataset: data, on: { click: (e) => e.stopPropagation() } }, text);

/**
 * Where a grouped, suppressed or silenced delivery went instead: its notification, the delivery
 * that opened the suppression window, or the silence (on the Silences page).
 */
function noiseLink(d) {
  if (d.status === 'grouped') {
    return d.notification_id ? inner(`#/logs/${encodeURIComponent(d.notification_id)}`, 'in its notification', { notification: d.notification_id })
      : h('span.muted', {}, 'waiting in its group');
  }
  if (d.status === 'suppressed' && d.suppressed_by) return inner(`#/logs/${encodeURIComponent(d.suppressed_by)}`, 'repeat of an earlier one', { suppressedBy: d.suppressed_by });
  if (d.status === 'silenced' && d.silence_id) return inner(`#silences/${encodeURIComponent(d.silence_id)}`, 'by a silence', { silence: d.silence_id });
  return null;
}

/** A status badge, and for noise-control statuses where the event went instead. */
function statusCell(d) {
  const link = noiseLink(d);
  return link ? h('div.status-with-link', {}, badge(d.status), ' ', link) : badge(d.status);
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return q.toString();
}

export async function renderList(view, params) {
  const [channels, tenants] = await Promise.all([get('/channels'), get('/tenants')]);
  const channelName = new Map(channels.items.map((c) => [c.id, c.name]));
  const filters = { status: params.get('status') || '', channel_id: params.get('channel_id') || '',
    tenant_id: params.get('tenant_id') || '', event_type: params.get('event_type') || '', request_id: params.get('request_id') || '',
    notification_id: params.get('notification_id') || '', q: params.get('q') || '', severity: params.get('severity') || '',
    since: params.get('since') || '', until: params.get('until') || '' };
  const cursors = [];
  let cursor = '';

  const go = () => { location.hash = `#/logs?${query(filters)}`; };
  const select = (name, label, options) => {
    const el = h('select', { name, id: `filter-${name}`, on: { change: () => { filters[name] = el.value; go(); } } },
      h('option', { value: '' }, 'Any'), options.map(([value, text]) => h('option', { value }, text)));
    el.value = filters[name];
    return h('div', {}, h('label', { for: el.id }, label), el);
  };
  const typeInput = h('input', { type: 'text', id: 'filter-event_type', name: 'event_type', list: 'known-types', value: filters.event_type,
    placeholder: 'any type', on: { change: () => { filters.event_type = typeInput.value.trim(); go(); } } });
  const tableSlot = h('div');
  const totalSlot = h('p.log-total#log-total', { 'aria-live': 'polite' });
  const search = searchControls(filters, go);
  const older = h('button', { type: 'button', on: { click: () => { cursors.push(cursor); cursor = older.dataset.next; load(); } } }, 'Older');
  const newer = h('button', { type: 'button', on: { click: () => { cursor = cursors.pop() || ''; load(); } } }, 'Newer');

  // Silence similar: opens the Silences form with the delivery's tenant, event type and site
  // (the payload's data.site_url, when the event has one).
  const silenceSimilar = (d) => h('button', { type: 'button', title: 'Set a silence for events like this one', on: {
    keydown: (e) => e.stopPropagation(),
    click: async (e) => {
      e.stopPropagation();
      try {
        const { payload } = await get(`/deliveries/${encodeURIComponent(d.id)}`);
        const site = payload && payload.data && typeof payload.data.site_url === 'string' ? payload.data.site_url : '';
        location.hash = `#/silences?${query({ new: '1', tenant_id: d.tenant_id, event: d.event, site })}`;
      } catch (error) { toast(error.message); }
    } } }, 'Silence similar');

  async function load() {
    let page;
    try {
      page = await get(`/deliveries?${query({ ...filters, cursor, limit: 25 })}`);
    } catch (error) {
      // A link with a filter the router refuses (a malformed date) says why instead of a blank log.
      clear(totalSlot).append(h('span.notice.bad', { dataset: { logError: '' } }, error.message));
      clear(tableSlot);
      // No page, so nothing to page through.
      older.hidden = true;
      newer.hidden = true;
      return;
    }
    totalSlot.textContent = `${page.total}${page.total_capped ? '+' : ''} ${page.total === 1 && !page.total_capped ? 'delivery matches' : 'deliveries match'}`;
    const rows = page.items.map((d) => h(`tr.clickable${NOISE.includes(d.status) ? '.noise' : ''}`, { dataset: { deliveryId: d.id, status: d.status }, tabindex: 0,
      on: { click: () => { location.hash = `#/logs/${d.id}`; }, keydown: (e) => { if (e.key === 'Enter') location.hash = `#/logs/${d.id}`; } } },
      h('td', {}, when(d.created_at)),
      h('td', {}, h('code', {}, d.event)),
      h('td.optional', {}, severity(d.severity)),
      h('td.optional', {}, d.tenant_id || '— (router)'),
      h('td', {}, channelName.get(d.channel_id) || d.channel_id),
      h('td', {}, statusCell(d)),
      h('td.num.optional', {}, String(d.attempt_count)),
      h('td.optional', {}, d.last_error || '—'),
      h('td', {}, silenceSimilar(d))));
    clear(tableSlot).append(table(['Time', 'Event', h('th.optional', {}, 'Severity'), h('th.optional', {}, 'Tenant'), 'Channel', 'Status',
      h('th.num.optional', {}, 'Attempts'), h('th.optional', {}, 'Last error'), 'Actions'], rows, 'No deliveries match.'));
    older.hidden = !page.next_cursor;
    older.dataset.next = page.next_cursor || '';
    newer.hidden = !cursor;
  }

  // Redeliver all: one manual attempt for every failed (or succeeded) delivery of the current
  // filter, sent at each channel's pace; the count is asked for first and confirmed.
  const redeliverAll = h('button', { type: 'button', on: { click: async () => {
    const status = filters.status || 'failed';
    if (status === 'grouped') {
      toast('Grouped deliveries went out in their notification: redeliver the notification (open one, then its notification).');
      return;
    }
    if (!['failed', 'succeeded', 'suppressed', 'silenced'].includes(status)) {
      toast('Redeliver all takes failed, succeeded, suppressed or silenced deliveries: choose one of those statuses.');
      return;
    }
    // Only the filters set: the API refuses an empty one rather than read it as "any".
    const body = Object.fromEntries(Object.entries({ ...filters, status }).filter(([, v]) => v !== ''));
    delete body.request_id;
    delete body.notification_id;
    delete body.q;
    delete body.severity;
    try {
      const { count } = await post('/deliveries/redeliver', { ...body, dry_run: true });
      if (!count) { toast(`No ${status} deliveries match this filter.`); return; }
      if (!confirm(`Redeliver ${count} ${status} ${count === 1 ? 'delivery' : 'deliveries'}? Each gets one more attempt, at its channel's pace.`)) return;
      const queued = await post('/deliveries/redeliver', body);
      toast(`${queued.count} ${queued.count === 1 ? 'delivery' : 'deliveries'} queued for redelivery`);
      await load();
    } catch (error) {
      toast(error.message);
    }
  } } }, 'Redeliver all');

  // Bulk redelivery filters by status, channel, tenant and type, not by request.
  redeliverAll.hidden = Boolean(filters.request_id || filters.notification_id || filters.q || filters.severity);
  // (Element.append would write a `null` notice as the text "null".)
  clear(view).append(...[
    h('div.bar', {}, h('h1', {}, 'Alert logs'), redeliverAll),
    search,
    h('div.filters', {},
      select('status', 'Status', [['failed', 'failed'], ['pending', 'pending'], ['succeeded', 'succeeded'], ['cancelled', 'cancelled'],
        ['grouped', 'grouped (sent in a notification)'], ['suppressed', 'suppressed (a repeat)'], ['silenced', 'silenced']]),
      select('channel_id', 'Channel', channels.items.map((c) => [c.id, c.name])),
      select('tenant_id', 'Tenant', tenants.items.map((t) => [t.id, t.display_name])),
      h('div', {}, h('label', { for: typeInput.id }, 'Event type'), typeInput,
        h('datalist#known-types', {}, KNOWN_TYPES.filter((t) => !t.includes('*')).map((t) => h('option', { value: t })))),
      h('button', { type: 'button', on: { click: () => { Object.keys(filters).forEach((k) => { filters[k] = ''; }); go(); } } }, 'Clear filters')),
    filters.request_id ? h('p.notice', { dataset: { requestFilter: '' } }, `Only the deliveries sent together in request ${filters.request_id}. `,
      h('a', { href: '#', on: { click: (e) => { e.preventDefault(); filters.request_id = ''; go(); } } }, 'Show all')) : null,
    filters.notification_id ? h('p.notice', { dataset: { notificationFilter: '' } }, 'Only the deliveries grouped into notification ',
      h('a', { href: `#/logs/${encodeURIComponent(filters.notification_id)}` }, filters.notification_id), '. ',
      h('a', { href: '#', on: { click: (e) => { e.preventDefault(); filters.notification_id = ''; go(); } } }, 'Show all')) : null,
    totalSlot,
    tableSlot,
    h('div.pager', {}, newer, older)].filter(Boolean));
  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}

/** `YYYY-MM-DDTHH:MM` in local time, for a datetime-local input, of an RFC 3339 time. */
function localInput(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * The alert log's search box (event id, site, principal or resource), severity and date range;
 * each change goes into the URL hash (`go`), so a link reproduces the view.
 */
function searchControls(filters, go) {
  const input = h('input', { type: 'text', inputmode: 'search', enterkeyhint: 'search', id: 'filter-q', name: 'q', value: filters.q, maxlength: 200,
    placeholder: 'Event id, site, principal or resource' });
  const severitySelect = h('select', { id: 'filter-severity', name: 'severity', on: { change: () => { filters.severity = severitySelect.value; go(); } } },
    h('option', { value: '' }, 'Any'), ['critical', 'high', 'medium', 'low'].map((s) => h('option', { value: s }, s)));
  severitySelect.value = filters.severity;
  const date = (name, label) => {
    const el = h('input', { type: 'datetime-local', id: `filter-${name}`, name, value: localInput(filters[name]), on: { change: () => {
      const at = el.value ? new Date(el.value) : null;
      filters[name] = at && !Number.isNaN(at.getTime()) ? at.toISOString() : '';
      go();
    } } });
    return h('div', {}, h('label', { for: el.id }, label), el);
  };
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  return h('form.log-search', { role: 'search', on: { submit: (e) => { e.preventDefault(); filters.q = input.value.trim(); go(); } } },
    h('div.log-search-q', {}, h('label', { for: input.id }, 'Search'), h('div.log-search-row', {}, input, h('button', { type: 'submit' }, 'Search'))),
    h('div', {}, h('label', { for: severitySelect.id }, 'Severity'), severitySelect),
    date('since', `From (${zone})`),
    date('until', `Until (${zone})`));
}

/** The delivery page's words for where a grouped, suppressed or silenced delivery went. */
function noiseFact(d) {
  const link = (href, text) => h('a', { href }, text);
  if (d.status === 'grouped') {
    return d.notification_id ? h('span', { dataset: { notification: d.notification_id } }, 'sent in notification ', link(`#/logs/${encodeURIComponent(d.notification_id)}`, d.notification_id))
      : h('span.muted', {}, 'waiting in its group; it goes out in the group’s next notification');
  }
  if (d.status === 'suppressed' && d.suppressed_by) {
    return h('span', { dataset: { suppressedBy: d.suppressed_by } }, 'not sent: a repeat of ', link(`#/logs/${encodeURIComponent(d.suppressed_by)}`, d.suppressed_by));
  }
  if (d.status === 'silenced' && d.silence_id) {
    return h('span', { dataset: { silence: d.silence_id } }, 'not sent: held by silence ', link(`#silences/${encodeURIComponent(d.silence_id)}`, d.silence_id));
  }
  return null;
}

/** The grouped deliveries a notification carried (the first 100, and a link to all). */
function groupedList(d, page, channelName) {
  const rows = page.items.map((g) => h('tr.clickable', { dataset: { deliveryId: g.id }, tabindex: 0,
    on: { click: () => { location.hash = `#/logs/${g.id}`; }, keydown: (e) => { if (e.key === 'Enter') location.hash = `#/logs/${g.id}`; } } },
    h('td', {}, when(g.created_at)),
    h('td', {}, h('code', {}, g.event)),
    h('td.optional', {}, severity(g.severity)),
    h('td.optional', {}, g.tenant_id || '—'),
    h('td', {}, channelName.get(g.channel_id) || g.channel_id)));
  return h('section', { dataset: { groupedIn: d.id } },
    h('h2', {}, `Events in this notification (${page.items.length}${page.next_cursor ? '+' : ''})`),
    table(['Time', 'Event', h('th.optional', {}, 'Severity'), h('th.optional', {}, 'Tenant'), 'Channel'], rows,
      'None listed: its grouped deliveries were purged.'),
    page.next_cursor ? h('p', {}, h('a', { href: `#/logs?${query({ notification_id: d.id })}` }, 'All of them in the alert log')) : null);
}


export async function renderDelivery(view, id) {
  const [channels, rules] = await Promise.all([get('/channels'), get('/rules')]);
  const ruleName = new Map(rules.items.map((r) => [r.id, r.name]));
  const channelName = new Map(channels.items.map((c) => [c.id, c.name]));
  // Redrawn only when the delivery changed, so an open request stays open and a Copy stays put.
  let shown = '';
  const opened = new Set();
  async function load() {
    const d = await get(`/deliveries/${encodeURIComponent(id)}`);
    const now = JSON.stringify(d);
    if (now === shown) return;
    shown = now;
    const latest = d.attempts.length ? d.attempts[d.attempts.length - 1].number : 0;
    const sent = d.attempts.slice().reverse().map((a) => {
      const details = h('details.sent-attempt', { dataset: { attempt: a.number }, open: a.number === latest || opened.has(a.number),
        on: { toggle: () => { if (details.open) opened.add(a.number); else opened.delete(a.number); } } },
      h('summary', {}, `Attempt ${a.number}: ${a.status_code ? `HTTP ${a.status_code}` : (a.error_kind || 'no answer')}, ${when(a.started_at)}`),
      sentRequest(a));
      return details;
    });
    // A notification (a group's message) lists the grouped deliveries it carried.
    const notification = d.group_id && d.status !== 'grouped';
    const members = notification ? await get(`/deliveries?${query({ notification_id: d.id, limit: 100 })}`) : null;
    // Redeliver only where the router takes it: never for a cancelled delivery or one whose
    // channel was deleted (the API answers 409), nor a grouped one (its notification went out).
    const channelGone = !channelName.has(d.channel_id);
    let redeliver;
    if (d.status === 'cancelled' || channelGone) {
      redeliver = h('p.muted', { dataset: { noRedeliver: 'channel' } }, 'Cannot be redelivered: ', d.status === 'cancelled'
        ? 'it was cancelled when its channel was deleted.' : 'its channel was deleted.');
    } else if (d.status === 'grouped') {
      redeliver = h('p.muted', { dataset: { noRedeliver: 'grouped' } }, d.notification_id
        ? ['It went out in ', h('a', { href: `#/logs/${encodeURIComponent(d.notification_id)}` }, 'its notification'), '; redeliver that one.']
        : 'It waits in its group and is sent with the group\'s notification.');
    } else {
      redeliver = h('button.primary', { type: 'button', on: { click: async () => {
        redeliver.disabled = true; redeliver.textContent = 'Redelivering…';
        try {
          const after = await post(`/deliveries/${encodeURIComponent(id)}/redeliver`);
          const last = after.attempts[after.attempts.length - 1];
          toast(last && !last.error_kind ? `Redelivered: HTTP ${last.status_code}` : `Redelivery failed: ${last ? last.error : ''}`);
        } catch (error) { toast(error.message); }
        await load();
      } } }, 'Redeliver');
    }
    const attempts = d.attempts.map((a) => h('tr', { dataset: { attempt: a.number } },
      h('td.num', {}, String(a.number)),
      h('td', {}, when(a.started_at)),
      h('td.num', {}, `${a.duration_ms} ms`),
      h('td', {}, a.error_kind ? h('span.badge.s-failed', {}, a.status_code ? `${a.status_code} ${a.error_kind}` : a.error_kind)
        : h('span.badge.s-succeeded', {}, String(a.status_code))),
      h('td', {}, a.trigger, a.request_id
        ? h('div.muted', { dataset: { request: a.request_id } }, 'sent with ', h('a', { href: `#/logs?request_id=${encodeURIComponent(a.request_id)}` },
          `${a.request_size - 1} other ${a.request_size === 2 ? 'delivery' : 'deliveries'}`), ' in one request') : null),
      h('td', {}, a.error ? h('div', {}, a.error) : null, a.response_excerpt ? h('code', {}, a.response_excerpt) : null)));
    clear(view).append(...[
      h('p', {}, h('a', { href: '#/logs' }, '← Alert logs')),
      h('div.bar', {}, h('h1', {}, `Delivery ${d.id}`), h('div.actions', {}, redeliver)),
      h('div.card', {}, h('dl.facts', {},
        h('dt', {}, 'Status'), h('dd', {}, badge(d.status), ' ', noiseFact(d)),
        d.rule_id ? [h('dt', {}, 'Rule'), h('dd', {}, ruleName.has(d.rule_id) ? h('a', { href: '#/rules' }, ruleName.get(d.rule_id)) : `${d.rule_id} (deleted)`)] : null,
        d.group_id ? [h('dt', {}, 'Group'), h('dd', {}, h('code', {}, d.group_id), notification ? h('span.muted', {}, ' (this is its notification)') : null)] : null,
        h('dt', {}, 'Event'), h('dd', {}, h('code', {}, d.event), ' ', severity(d.severity), ' ', h('span.muted', {}, d.event_id)),
        h('dt', {}, 'Tenant'), h('dd', {}, d.tenant_id || '— (the router itself)'),
        h('dt', {}, 'Channel'), h('dd', {}, channelName.get(d.channel_id) || `${d.channel_id} (deleted)`),
        d.ticket ? [h('dt', {}, 'Wrote to'), h('dd', { dataset: { ticket: d.ticket.id } }, ticketLink(d.ticket))] : null,
        // ConnectWise, Autotask: the company the tenant mapped to, or the channel's default.
        d.company ? [h('dt', {}, 'Company'), h('dd', { dataset: { company: d.company.id } }, d.company.id,
          h('span.muted', {}, d.company.source === 'map' ? ' (the tenant’s, from the channel’s companies)' : ' (the channel’s default: the tenant is not in its companies)'))] : null,
        h('dt', {}, 'Attempts'), h('dd', {}, String(d.attempt_count)),
        h('dt', {}, 'Next attempt'), h('dd', {}, d.waiting_for
          ? h('span', { dataset: { waitingFor: d.waiting_for } }, 'after ', h('a', { href: `#/logs/${encodeURIComponent(d.waiting_for)}` }, 'an earlier delivery of its incident'),
            ' (one at a time, oldest first)')
          : (d.next_attempt_at ? when(d.next_attempt_at) : '—')),
        h('dt', {}, 'Created'), h('dd', {}, when(d.created_at)))),
      members ? groupedList(d, members, channelName) : null,
      h('h2', {}, 'Attempts'),
      table([h('th.num', {}, '#'), 'Started', h('th.num', {}, 'Duration'), 'Result', 'Trigger', 'Answer or error'], attempts, 'No attempt yet.'),
      sent.length ? h('section#sent', {}, h('h2', {}, 'What was sent'), sent) : null,
      h('h2', {}, 'Payload'),
      h('pre#payload', {}, JSON.stringify(d.payload, null, 2))].filter(Boolean));
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
