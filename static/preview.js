// "Try an event" on the Rules page: what every rule would do with an event, from
// POST /api/v1/rules/preview. Nothing is stored or sent. Event data is shown as text, never markup.

import { post } from './api.js';
import { clear, clearErrors, field, formError, h, showError, when } from './ui.js';

/** A sample external share: for a registered tenant when there is one, else with a full tenant. */
function sample(tenants) {
  const tenant = tenants[0];
  const event = {
    event: 'permission.external_share_created',
    severity: 'high',
    data: {
      site_url: `https://${tenant ? tenant.id : 'contoso'}.sharepoint.com/sites/Finance`,
      resource_path: 'Shared Documents/Q3 forecast.xlsx',
      permission_type: 'specific_people_link',
      principal: 'outsider@example.net',
      access_level: 'edit',
    },
  };
  if (tenant) event.tenant_id = tenant.id;
  else event.tenant = { id: 'contoso', display_name: 'Contoso Ltd', microsoft_tenant_id: 'b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd' };
  return JSON.stringify(event, null, 2);
}

/** One channel's outcome in words, with links to what it names. */
function outcomeWords(channel, channelKnown) {
  switch (channel.outcome) {
    case 'send': return ['sent at once'];
    case 'group': return channel.group_id
      ? ['joins group ', h('code', {}, channel.group_id), `, sent at ${when(channel.send_at)}`]
      : [`starts a new group, sent at ${when(channel.send_at)}`];
    case 'suppressed': return ['suppressed by delivery ', h('a', { href: `#/logs/${channel.suppressed_by}` }, channel.suppressed_by),
      ` until ${when(channel.until)}`];
    case 'silenced': return ['silenced by ', h('a', { href: `#/silences/${channel.silence_id}` }, channel.silence_id)];
    default: return [channelKnown ? 'nothing: the channel is disabled' : 'nothing: the channel was deleted'];
  }
}

/** The preview: per rule, matched or why not; per channel of a matching rule, what happens. */
function answer(preview, channels) {
  const channelName = new Map(channels.map((c) => [c.id, c.name]));
  const ruleName = new Map(preview.rules.map((r) => [r.rule_id, r.name]));
  if (!preview.rules.length) return h('p.muted', {}, 'No rules yet: nothing would be sent.');
  return h('ol.preview', { 'aria-label': 'What the rules would do' }, preview.rules.map((rule) => h('li', { dataset: { ruleId: rule.rule_id } },
    h('strong', {}, rule.name), ' ',
    rule.matched
      ? h('span.badge.s-on', {}, 'matches')
      : [h('span.badge.s-off', {}, 'no match'), ' ', rule.reason.detail,
        ...(rule.reason.path ? [' (at ', h('code', {}, rule.reason.path), ')'] : [])],
    rule.channels.length ? h('ul', {}, rule.channels.map((c) => h('li', { dataset: { channelId: c.channel_id } },
      `${channelName.get(c.channel_id) || c.channel_id}: `, outcomeWords(c, channelName.has(c.channel_id)),
      c.decided_by ? ` — decided by ${c.decided_by === rule.rule_id ? 'this rule' : `“${ruleName.get(c.decided_by) || c.decided_by}”`}` : null)))
      : null)));
}

/** The "Try an event" panel. */
export function tryEventPanel(channels, tenants) {
  const event = h('textarea.mono', { name: 'event', rows: 10, spellcheck: 'false' });
  event.value = sample(tenants);
  const at = h('input', { type: 'text', name: 'at', placeholder: 'e.g. 2026-11-28T15:36:08Z' });
  const result = h('div', { role: 'status', 'aria-live': 'polite' });
  const form = h('form.card', { 'aria-label': 'Try an event' },
    h('p.muted', {}, 'What the rules would do with an event like this, now or at a given time. Nothing is stored or sent.'),
    field('Event (JSON, as for POST /api/v1/events)', event),
    field('At (optional)', at, 'RFC 3339; empty: now. Active hours, silences, suppression and group timers are judged then.'),
    formError(),
    h('div.actions', {}, h('button.primary', { type: 'submit' }, 'Try')),
    result);
  form.addEventListener('submit', async (submitted) => {
    submitted.preventDefault();
    clearErrors(form);
    clear(result);
    let body;
    try {
      body = JSON.parse(event.value);
    } catch (error) {
      showError(form, { problem: { field: 'event', detail: `This is not valid JSON: ${error.message}` } });
      return;
    }
    if (at.value.trim() && body && typeof body === 'object' && !Array.isArray(body)) body.at = at.value.trim();
    try {
      result.append(answer(await post('/rules/preview', body), channels));
      result.scrollIntoView({ block: 'nearest' });
    } catch (error) {
      // Every field but `at` is the event's: shown under it (the detail names the field).
      const problem = error.problem || {};
      showError(form, { message: error.message, problem: { ...problem, field: problem.field === 'at' ? 'at' : 'event' } });
    }
  });
  return h('section', {}, h('h2', {}, 'Try an event'), form);
}
