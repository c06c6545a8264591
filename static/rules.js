// Rules: which events (types, minimum severity, tenant) go to which channels.

import { del, get, patch, post } from './api.js';
import { tryEventPanel } from './preview.js';
import { clear, clearErrors, enabledField, field, formError, h, onOff, safely, saveOrCancel, severity, showError, table, toast } from './ui.js';

export const KNOWN_TYPES = [
  '*', 'permission.*', 'storage.*',
  'permission.external_share_created', 'permission.anonymous_link_created',
  'permission.site_admin_added', 'permission.broad_access_granted',
  'storage.threshold_exceeded', 'storage.quota_exceeded',
];
const SEVERITIES = ['low', 'medium', 'high', 'critical'];

function ruleForm(rule, channels, tenants, done) {
  const name = h('input', { type: 'text', name: 'name', required: true, value: rule ? rule.name : '' });
  const chosen = new Set(rule ? rule.event_types : []);
  const typeBoxes = KNOWN_TYPES.map((t) => {
    const box = h('input', { type: 'checkbox', value: t });
    box.checked = chosen.has(t);
    return h('label.inline', {}, box, h('code', {}, t));
  });
  const other = h('input', { type: 'text', name: 'event_types_other', placeholder: 'e.g. sharing.*, storage.site_locked',
    value: rule ? rule.event_types.filter((t) => !KNOWN_TYPES.includes(t)).join(', ') : '' });
  const minimum = h('select', { name: 'min_severity' }, SEVERITIES.map((s) => h('option', { value: s }, s)));
  minimum.value = rule ? rule.min_severity : 'medium';
  const tenant = h('select', { name: 'tenant_id' }, h('option', { value: '' }, 'All tenants'),
    tenants.map((t) => h('option', { value: t.id }, `${t.display_name} (${t.id})`)));
  tenant.value = rule && rule.tenant_id ? rule.tenant_id : '';
  const targets = new Set(rule ? rule.channel_ids : []);
  const channelBoxes = channels.map((c) => {
    const box = h('input', { type: 'checkbox', value: c.id });
    box.checked = targets.has(c.id);
    return h('label.inline', {}, box, c.name);
  });
  const [enabledRow, enabled] = enabledField(rule ? rule.enabled : true);

  const form = h('form.card', { 'aria-label': rule ? 'Edit rule' : 'Add rule' },
    h('h2', {}, rule ? `Edit ${rule.name}` : 'Add rule'),
    field('Name', name),
    h('fieldset.field', { dataset: { field: 'event_types' } },
      h('legend', {}, h('strong', {}, 'Event types')), typeBoxes,
      h('label', { for: 'rule-other-types' }, 'Other types or patterns'),
      Object.assign(other, { id: 'rule-other-types' }),
      h('div.hint', {}, 'Exact types, prefix patterns such as permission.*, or * for everything; comma-separated.'),
      h('p.error', { hidden: true, role: 'alert' })),
    h('div.grid2', {}, field('Minimum severity', minimum), field('Tenant', tenant)),
    h('fieldset.field', { dataset: { field: 'channel_ids' } },
      h('legend', {}, h('strong', {}, 'Channels')),
      channelBoxes.length ? channelBoxes : h('p.muted', {}, 'Add a channel first.'),
      h('p.error', { hidden: true, role: 'alert' })),
    enabledRow,
    formError(),
    saveOrCancel(done));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const types = typeBoxes.map((l) => l.querySelector('input')).filter((b) => b.checked).map((b) => b.value)
      .concat(other.value.split(',').map((s) => s.trim()).filter(Boolean));
    const body = {
      name: name.value,
      event_types: types,
      min_severity: minimum.value,
      tenant_id: tenant.value || null,
      channel_ids: channelBoxes.map((l) => l.querySelector('input')).filter((b) => b.checked).map((b) => b.value),
      enabled: enabled.checked,
    };
    try {
      done(rule ? await patch(`/rules/${rule.id}`, body) : await post('/rules', body));
    } catch (error) {
      showError(form, error);
    }
  });
  return form;
}

export async function render(view) {
  const [rules, channels, tenants] = await Promise.all([get('/rules'), get('/channels'), get('/tenants')]);
  const channelName = new Map(channels.items.map((c) => [c.id, c.name]));
  const tenantName = new Map(tenants.items.map((t) => [t.id, t.display_name]));
  const formSlot = h('div');
  const reload = () => render(view);
  const show = (rule) => {
    clear(formSlot).append(ruleForm(rule, channels.items, tenants.items, (saved) => {
      clear(formSlot);
      if (saved) { toast(`Saved ${saved.name}`); reload(); }
    }));
    formSlot.querySelector('input').focus();
  };
  const rows = rules.items.map((rule) => h('tr', { dataset: { ruleId: rule.id } },
    h('td', {}, h('strong', {}, rule.name)),
    h('td', {}, rule.event_types.map((t) => h('div', {}, h('code', {}, t)))),
    h('td', {}, severity(rule.min_severity), ' and up'),
    h('td.optional', {}, rule.tenant_id ? (tenantName.get(rule.tenant_id) || rule.tenant_id) : 'All tenants'),
    h('td', {}, rule.channel_ids.length ? rule.channel_ids.map((id) => h('div', {}, channelName.get(id) || id))
      : h('span.muted', { dataset: { noChannels: '' } }, 'None: its channels were deleted, so it stays disabled until you add one (Edit).')),
    h('td', {}, onOff(rule.enabled)),
    h('td', {}, h('div.actions', {},
      h('button', { type: 'button', on: { click: () => show(rule) } }, 'Edit'),
      rule.enabled || rule.channel_ids.length ? h('button', { type: 'button', on: { click: safely(async () => {
        await patch(`/rules/${rule.id}`, { enabled: !rule.enabled }); await reload();
      }) } }, rule.enabled ? 'Disable' : 'Enable') : null,
      h('button.danger', { type: 'button', on: { click: safely(async () => {
        if (!confirm(`Delete rule “${rule.name}”?`)) return;
        await del(`/rules/${rule.id}`); toast(`Deleted ${rule.name}`); await reload();
      }) } }, 'Delete')))));
  clear(view).append(
    h('div.bar', {}, h('h1', {}, 'Rules'),
      h('button.primary', { type: 'button', on: { click: () => show(null) } }, 'Add rule')),
    formSlot,
    table(['Rule', 'Event types', 'Severity', h('th.optional', {}, 'Tenant'), 'Channels', 'State', 'Actions'], rows,
      'No rules yet. A rule sends matching events to channels.'),
    tryEventPanel(channels.items, tenants.items));
}
