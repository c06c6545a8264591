// One tenant's page (#/tenants/{id}): its details, the rules that apply to it (its own and those
// for every tenant), the channels those rules send to, and its alert log (the newest deliveries
// with its tenant_id, refreshing while open).

import { get } from './api.js';
import { badge, clear, h, onOff, severity, table, when } from './ui.js';

const REFRESH_MS = 5000;
const SHOWN = 25;

const link = (href, text, data) => h('a', { href, dataset: data }, text);
const logOf = (params) => `#/logs?${new URLSearchParams(params)}`;

function details(tenant) {
  const audit = tenant.audit || {};
  return h('div.card', {}, h('dl.facts', {},
    h('dt', {}, 'Tenant ID'), h('dd', {}, h('code', {}, tenant.id)),
    h('dt', {}, 'Microsoft tenant ID'), h('dd', {}, h('code', {}, tenant.microsoft_tenant_id)),
    h('dt', {}, 'Last audit record'), h('dd', {}, audit.last_record_at ? when(audit.last_record_at) : h('span.muted', {}, 'none yet')),
    h('dt', {}, 'Added'), h('dd', {}, when(tenant.created_at)),
    h('dt', {}, 'Updated'), h('dd', {}, when(tenant.updated_at))));
}

function rulesTable(rules, tenant, channelName) {
  const rows = rules.map((rule) => h('tr', { dataset: { ruleId: rule.id } },
    h('td', {}, h('strong', {}, rule.name)),
    h('td', {}, rule.tenant_id ? `${tenant.display_name} only` : 'Every tenant'),
    h('td', {}, rule.event_types.map((t) => h('div', {}, h('code', {}, t)))),
    h('td', {}, severity(rule.min_severity), ' and up'),
    h('td', {}, rule.channel_ids.length ? rule.channel_ids.map((id) => h('div', {}, channelName.get(id) || id)) : h('span.muted', {}, 'none')),
    h('td', {}, onOff(rule.enabled))));
  return table(['Rule', 'Applies to', 'Event types', 'Severity', 'Channels', 'State'], rows,
    'No rule applies to this tenant: its events are logged but sent nowhere. Add one under Rules.');
}

function channelsTable(channels, rules, tenant) {
  const rows = channels.map((channel) => h('tr', { dataset: { channelId: channel.id } },
    h('td', {}, h('strong', {}, channel.name)),
    h('td', {}, channel.type),
    h('td', {}, onOff(channel.enabled)),
    h('td', {}, rules.filter((r) => r.channel_ids.includes(channel.id)).map((r) => h('div', {}, r.name))),
    h('td', {}, link(logOf({ tenant_id: tenant.id, channel_id: channel.id }), 'Its deliveries for this tenant'))));
  return table(['Channel', 'Type', 'State', 'Used by', 'Alert log'], rows, 'None: no rule that applies sends to a channel.');
}

export async function render(view, id) {
  // The list carries each tenant's audit summary; the tenant's own address says when it is unknown.
  const [tenants, rules, channels] = await Promise.all([get('/tenants'), get('/rules'), get('/channels')]);
  const tenant = tenants.items.find((t) => t.id === id) || await get(`/tenants/${encodeURIComponent(id)}`);
  const channelName = new Map(channels.items.map((c) => [c.id, c.name]));
  const applying = rules.items.filter((r) => !r.tenant_id || r.tenant_id === tenant.id);
  const used = new Set(applying.flatMap((r) => r.channel_ids));
  const logSlot = h('div', { dataset: { tenantLog: tenant.id } });

  async function load() {
    const page = await get(`/deliveries?${new URLSearchParams({ tenant_id: tenant.id, limit: SHOWN })}`);
    const rows = page.items.map((d) => h('tr.clickable', { dataset: { deliveryId: d.id, status: d.status }, tabindex: 0,
      on: { click: () => { location.hash = `#/logs/${d.id}`; }, keydown: (e) => { if (e.key === 'Enter') location.hash = `#/logs/${d.id}`; } } },
      h('td', {}, when(d.created_at)),
      h('td', {}, h('code', {}, d.event)),
      h('td', {}, severity(d.severity)),
      h('td', {}, channelName.get(d.channel_id) || d.channel_id),
      h('td', {}, badge(d.status))));
    clear(logSlot).append(
      table(['Time', 'Event', 'Severity', 'Channel', 'Status'], rows, 'No deliveries for this tenant yet.'),
      page.next_cursor ? h('p', {}, link(logOf({ tenant_id: tenant.id }), `Older ones in the alert log`)) : '');
  }

  clear(view).append(
    h('p', {}, h('a', { href: '#/tenants' }, '← Tenants')),
    h('div.bar', {}, h('h1', {}, tenant.display_name), link(logOf({ tenant_id: tenant.id }), 'Open its alert log')),
    details(tenant),
    h('h2', {}, 'Rules that apply'),
    rulesTable(applying, tenant, channelName),
    h('h2', {}, 'Channels they send to'),
    channelsTable(channels.items.filter((c) => used.has(c.id)), applying, tenant),
    h('h2', {}, 'Alert log'),
    logSlot);
  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
