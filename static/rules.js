// Rules: which events (types, minimum severity, tenant, conditions) go to which channels, and how
// often (priority, grouping, suppression, active hours: SPEC section 16).

import { del, get, patch, post } from './api.js';
import { conditionBuilder, pathList } from './conditions.js';
import { groupSection, hoursSection, prioritySection, siemChannels, summary, suppressSection } from './noise.js';
import { tryEventPanel } from './preview.js';
import { clear, clearErrors, enabledField, field, formError, h, onOff, safely, saveOrCancel, severity, showError, table, toast } from './ui.js';

export const KNOWN_TYPES = [
  '*', 'permission.*', 'storage.*', 'router.*',
  'permission.external_share_created', 'permission.anonymous_link_created',
  'permission.site_admin_added', 'permission.broad_access_granted',
  'storage.threshold_exceeded', 'storage.quota_exceeded',
  'router.channel_disabled',
];

/** What the router's own events are, for the rule form. */
const ROUTER_EVENTS_HELP = 'router.* are the router’s own events, about itself rather than a tenant: '
  + 'router.channel_disabled when it disables a channel whose receiver is gone (410 Gone, or failing for DISABLE_AFTER), '
  + 'so someone hears of it on another channel. They belong to no tenant: only rules for All tenants get them.';
const SEVERITIES = ['low', 'medium', 'high', 'critical'];

/** Equal as JSON values, whatever the order of their keys. */
function same(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => k in b && same(a[k], b[k]));
}

/** What the form read, or the rule's own value when they are equal (kept exactly as written). */
const kept = (original, value) => (original !== undefined && same(original, value) ? original : value);

/**
 * Shows an API error next to the control it names: the control whose `data-path` is the longest
 * prefix of `problem.field` (`conditions.any[2].value`, `group.wait`, `active_hours[1].timezone`),
 * in words ("Condition 3, value: must be a number…"). Other fields go the usual way.
 */
function showRuleError(form, error) {
  const problem = error.problem || {};
  const name = problem.field || '';
  let best = null;
  for (const el of form.querySelectorAll('[data-path]')) {
    const at = el.dataset.path;
    const shown = el.getClientRects().length > 0;
    if (at && shown && (name === at || name.startsWith(`${at}.`) || name.startsWith(`${at}[`))
      && (!best || at.length >= best.dataset.path.length)) best = el;
  }
  if (!best) { showError(form, error); return; }
  clearErrors(form);
  const detail = problem.detail || error.message;
  const message = detail.startsWith(`${name}: `) ? detail.slice(name.length + 2) : detail;
  const holder = best.closest('.cond-row, .by-row, .cond-advanced, .field, fieldset');
  const slot = holder.querySelector(':scope > .error');
  // In the JSON box the path itself says where; elsewhere the control's name does.
  slot.textContent = best.matches('.cond-json') ? `${name}: ${message}` : `${best.dataset.label || name}: ${message}`;
  slot.hidden = false;
  if (best.matches('input, select, textarea')) { best.setAttribute('aria-invalid', 'true'); best.focus(); }
}

/**
 * The Add or Edit rule form. `preset` fills a new rule's name, event types, minimum severity and
 * channels (the first run and "add the new channel to a rule" use it).
 */
export function ruleForm(rule, channels, tenants, done, preset = {}) {
  const name = h('input', { type: 'text', name: 'name', required: true, value: rule ? rule.name : (preset.name || '') });
  const chosen = new Set(rule ? rule.event_types : (preset.event_types || []));
  const typeBoxes = KNOWN_TYPES.map((t) => {
    const box = h('input', { type: 'checkbox', value: t });
    box.checked = chosen.has(t);
    return h('label.inline', {}, box, h('code', {}, t));
  });
  const other = h('input', { type: 'text', name: 'event_types_other', placeholder: 'e.g. sharing.*, storage.site_locked',
    value: rule ? rule.event_types.filter((t) => !KNOWN_TYPES.includes(t)).join(', ') : '' });
  const minimum = h('select', { name: 'min_severity' }, SEVERITIES.map((s) => h('option', { value: s }, s)));
  minimum.value = rule ? rule.min_severity : (preset.min_severity || 'medium');
  const tenant = h('select', { name: 'tenant_id' }, h('option', { value: '' }, 'All tenants'),
    tenants.map((t) => h('option', { value: t.id }, `${t.display_name} (${t.id})`)));
  tenant.value = rule && rule.tenant_id ? rule.tenant_id : '';
  const targets = new Set(rule ? rule.channel_ids : (preset.channel_ids || []));
  const channelBoxes = channels.map((c) => {
    const box = h('input', { type: 'checkbox', value: c.id });
    box.checked = targets.has(c.id);
    return h('label.inline', {}, box, c.name);
  });
  const [enabledRow, enabled] = enabledField(rule ? rule.enabled : true);
  const conditions = conditionBuilder(rule ? rule.conditions : null);
  const priority = prioritySection(rule);
  const group = groupSection(rule ? rule.group : null);
  const suppress = suppressSection(rule ? rule.suppress : null);
  const hours = hoursSection(rule ? rule.active_hours : null);
  const chosenChannels = () => channelBoxes.map((l) => l.querySelector('input')).filter((b) => b.checked).map((b) => b.value);
  const siem = h('p.notice.info', { dataset: { siemNotice: '' } });
  const showSiem = () => { const text = siemChannels(channels, chosenChannels()); siem.textContent = text || ''; siem.hidden = !text; };
  channelBoxes.forEach((l) => l.querySelector('input').addEventListener('change', showSiem));
  showSiem();

  const form = h('form.card', { 'aria-label': rule ? 'Edit rule' : 'Add rule' },
    h('h2', {}, rule ? `Edit ${rule.name}` : 'Add rule'),
    field('Name', name),
    h('fieldset.field', { dataset: { field: 'event_types' } },
      h('legend', {}, h('strong', {}, 'Event types')), typeBoxes,
      h('label', { for: 'rule-other-types' }, 'Other types or patterns'),
      Object.assign(other, { id: 'rule-other-types' }),
      h('div.hint', {}, 'Exact types, prefix patterns such as permission.*, or * for everything; comma-separated.'),
      h('div.hint', { dataset: { routerEvents: '' } }, ROUTER_EVENTS_HELP),
      h('p.error', { hidden: true, role: 'alert' })),
    h('div.grid2', {}, field('Minimum severity', minimum), field('Tenant', tenant)),
    h('fieldset.field', { dataset: { field: 'conditions', path: 'conditions', label: 'Conditions' } },
      h('legend', {}, h('strong', {}, 'Conditions')),
      h('div.hint', {}, 'Tests on the event as a webhook receives it; pick a field or type any JSON pointer.'),
      conditions.element,
      h('p.error', { hidden: true, role: 'alert' })),
    h('fieldset.field', { dataset: { field: 'channel_ids' } },
      h('legend', {}, h('strong', {}, 'Channels')),
      channelBoxes.length ? channelBoxes : h('p.muted', {}, 'Add a channel first.'),
      h('p.error', { hidden: true, role: 'alert' })),
    h('h3', {}, 'How often'),
    siem,
    priority.element,
    group.element,
    suppress.element,
    hours.element,
    pathList(),
    enabledRow,
    formError(),
    saveOrCancel(done));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const types = typeBoxes.map((l) => l.querySelector('input')).filter((b) => b.checked).map((b) => b.value)
      .concat(other.value.split(',').map((s) => s.trim()).filter(Boolean));
    // Channels the rule had keep their order, so an unchanged list reads as unchanged.
    const picked = chosenChannels();
    const channelIds = (rule ? rule.channel_ids.filter((id) => picked.includes(id)) : []).concat(picked.filter((id) => !rule || !rule.channel_ids.includes(id)));
    const body = {
      name: name.value,
      event_types: types,
      min_severity: minimum.value,
      tenant_id: tenant.value || null,
      channel_ids: channelIds,
      enabled: enabled.checked,
    };
    try {
      // Unchanged noise fields are sent as the rule has them: an open group closes only when
      // what it collects really changed.
      Object.assign(body, {
        priority: priority.read(),
        conditions: kept(rule ? rule.conditions : undefined, conditions.read()),
        group: kept(rule ? rule.group : undefined, group.read()),
        suppress: kept(rule ? rule.suppress : undefined, suppress.read()),
        active_hours: kept(rule ? rule.active_hours : undefined, hours.read()),
      });
    } catch (invalid) {
      showRuleError(form, { problem: { field: invalid.field, detail: `${invalid.field}: ${invalid.message}` } });
      return;
    }
    try {
      done(rule ? await patch(`/rules/${rule.id}`, body) : await post('/rules', body));
    } catch (error) {
      showRuleError(form, error);
    }
  });
  return form;
}

/** The rules list's short summary of a rule's noise settings. */
function noiseCell(rule) {
  const lines = summary(rule);
  return h('td.noise', { dataset: { noise: '' } },
    lines.length ? lines.map((line) => h('div', {}, line)) : h('span.muted', {}, 'every event, at once'));
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
    noiseCell(rule),
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
    table(['Rule', 'Event types', 'Severity', h('th.optional', {}, 'Tenant'), 'Channels', 'Noise control', 'State', 'Actions'], rows,
      'No rules yet. A rule sends matching events to channels.'),
    tryEventPanel(channels.items, tenants.items));
}
