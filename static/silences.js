// Silences: for a while, matching events are not sent to their channels (each is logged as
// `silenced`). The list (active, pending, and those ended in the last 5 days) with End now, and
// the form that sets one, which the alert log's "Silence similar" opens pre-filled.

import { del, get, post } from './api.js';
import { badge, clear, clearErrors, field, formError, h, saveOrCancel, showError, table, toast, when } from './ui.js';
import { KNOWN_TYPES } from './rules.js';

const REFRESH_MS = 10000;
// The payload fields (section 4) the form's boxes match on.
const TENANT = '/tenant/id';
const EVENT = '/event';
const SITE = '/data/site_url';
const NAMES = { [TENANT]: 'tenant', [EVENT]: 'event type', [SITE]: 'site', '/severity': 'severity' };
const OPS = { eq: 'is', neq: 'is not', in: 'is one of', nin: 'is none of', prefix: 'starts with', suffix: 'ends with',
  contains: 'contains', regex: 'matches', gt: '>', gte: '≥', lt: '<', lte: '≤' };

/** A conditions tree in words: `tenant is "contoso" and site is "https://…"`. */
export function inWords(node) {
  if (!node || typeof node !== 'object') return JSON.stringify(node);
  const nested = (child) => (child && (child.all || child.any) ? `(${inWords(child)})` : inWords(child));
  if (Array.isArray(node.all)) return node.all.map(nested).join(' and ');
  if (Array.isArray(node.any)) return node.any.map(nested).join(' or ');
  if ('not' in node) return `not (${inWords(node.not)})`;
  const name = NAMES[node.path] || node.path;
  if (node.op === 'exists') return `${name} ${node.value ? 'is present' : 'is absent'}`;
  return `${name} ${OPS[node.op] || node.op} ${JSON.stringify(node.value)}${node.case_insensitive ? ' (any case)' : ''}`;
}

/** The create form; `prefill` may hold `tenant_id`, `event` and `site` (Silence similar). */
function silenceForm(prefill, tenants, done) {
  const tenant = h('select', { name: 'tenant' }, h('option', { value: '' }, 'Any tenant'),
    tenants.map((t) => h('option', { value: t.id }, `${t.display_name} (${t.id})`)));
  if (prefill.tenant_id && !tenants.some((t) => t.id === prefill.tenant_id)) tenant.append(h('option', { value: prefill.tenant_id }, prefill.tenant_id));
  tenant.value = prefill.tenant_id || '';
  const eventType = h('input', { type: 'text', name: 'event', list: 'silence-known-types', value: prefill.event || '', placeholder: 'any event type' });
  const site = h('input', { type: 'text', name: 'site', value: prefill.site || '', placeholder: 'any site' });
  const raw = h('textarea', { name: 'matchers', spellcheck: 'false', placeholder: '{"path":"/data/principal","op":"suffix","value":"@example.net"}' });
  const duration = h('input', { type: 'text', name: 'duration', value: '2h' });
  const endsAt = h('input', { type: 'datetime-local', name: 'ends_at' });
  const comment = h('input', { type: 'text', name: 'comment', required: true });
  const createdBy = h('input', { type: 'text', name: 'created_by', required: true });

  const form = h('form.card', { 'aria-label': 'Add silence' },
    h('h2', {}, 'Add silence'),
    h('p.muted', {}, 'Matching events are not sent while the silence lasts; each is logged as silenced. Splunk and Sentinel channels still get every event.'),
    h('div.grid2', {}, field('Tenant', tenant), field('Event type', eventType)),
    field('Site', site, 'The site URL exactly as events carry it (data.site_url).'),
    field('Matchers (JSON)', raw, 'Optional: a conditions tree, as in a rule, matched as well as the fields above.'),
    h('datalist#silence-known-types', {}, KNOWN_TYPES.filter((t) => !t.includes('*')).map((t) => h('option', { value: t }))),
    h('div.grid2', {}, field('Duration', duration, 'From now, such as 30m, 2h or 3d.'), field('Or ends at', endsAt, `In this browser’s time zone (${Intl.DateTimeFormat().resolvedOptions().timeZone || 'local'}); used instead of the duration when set.`)),
    h('div.grid2', {}, field('Comment', comment, 'Why; shown in the list.'), field('Created by', createdBy)),
    formError(),
    saveOrCancel(done));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const refuse = (name, detail) => showError(form, { message: detail, problem: { field: name, detail } });
    const leaves = [];
    if (tenant.value) leaves.push({ path: TENANT, op: 'eq', value: tenant.value });
    if (eventType.value.trim()) leaves.push({ path: EVENT, op: 'eq', value: eventType.value.trim() });
    if (site.value.trim()) leaves.push({ path: SITE, op: 'eq', value: site.value.trim() });
    if (raw.value.trim()) {
      try { leaves.push(JSON.parse(raw.value)); } catch (error) { refuse('matchers', `The matchers are not JSON: ${error.message}`); return; }
    }
    if (!leaves.length) { refuse('matchers', 'Choose a tenant, an event type or a site, or write matchers.'); return; }
    const body = { matchers: leaves.length === 1 ? leaves[0] : { all: leaves }, comment: comment.value, created_by: createdBy.value };
    if (endsAt.value) body.ends_at = new Date(endsAt.value).toISOString();
    else body.duration = duration.value;
    try {
      done(await post('/silences', body));
    } catch (error) {
      showError(form, error);
    }
  });
  return form;
}

export async function render(view, params) {
  const [tenants, channels, rules] = await Promise.all([get('/tenants'), get('/channels'), get('/rules')]);
  const channelName = new Map(channels.items.map((c) => [c.id, c.name]));
  const ruleName = new Map(rules.items.map((r) => [r.id, r.name]));
  const formSlot = h('div');
  const tableSlot = h('div');
  const prefilled = params && params.get('new');

  const closeForm = () => {
    clear(formSlot);
    // Leave the pre-filled address, so a reload does not open the form again.
    if (prefilled) history.replaceState(null, '', '#/silences');
  };
  const show = (prefill) => {
    clear(formSlot).append(silenceForm(prefill, tenants.items, async (saved) => {
      closeForm();
      if (saved) { toast(`Silence set until ${when(saved.ends_at)}`); await load(); }
    }));
    formSlot.querySelector('input[name="comment"]').focus();
  };

  async function load() {
    const { items } = await get('/silences');
    const rows = items.map((s) => h('tr', { dataset: { silenceId: s.id, status: s.status } },
      h('td', {}, badge(s.status)),
      h('td', {}, h('div', {}, inWords(s.matchers)),
        s.channel_ids ? h('div.muted', {}, `only to ${s.channel_ids.map((id) => channelName.get(id) || id).join(', ')}`) : null,
        s.rule_ids ? h('div.muted', {}, `only by ${s.rule_ids.map((id) => ruleName.get(id) || id).join(', ')}`) : null),
      h('td', {}, h('div', {}, `from ${when(s.starts_at)}`), h('div', {}, `to ${when(s.ends_at)}`)),
      h('td', {}, s.comment),
      h('td.optional', {}, s.created_by),
      h('td', {}, s.status === 'expired' ? null : h('button.danger', { type: 'button', on: { click: async () => {
        if (!confirm(`End the silence “${s.comment}” now? Events it held are not sent now; redeliver them from the alert log if they should be.`)) return;
        try { await del(`/silences/${encodeURIComponent(s.id)}`); toast('Silence ended'); } catch (error) { toast(error.message); }
        await load();
      } } }, 'End now'))));
    clear(tableSlot).append(table(['Status', 'Matches', 'Window', 'Comment', h('th.optional', {}, 'Created by'), 'Actions'], rows,
      'No silences. Set one here, or with “Silence similar” in the alert log.'));
  }

  clear(view).append(
    h('div.bar', {}, h('h1', {}, 'Silences'),
      h('button.primary', { type: 'button', on: { click: () => show({}) } }, 'Add silence')),
    formSlot,
    tableSlot);
  await load();
  if (prefilled) show({ tenant_id: params.get('tenant_id') || '', event: params.get('event') || '', site: params.get('site') || '' });
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
