// After a channel is added: the offer to send a rule's alerts to it, done in place. Pick an
// existing rule (the channel is added to its channels), or create one with the channel ticked.

import { get, patch } from './api.js';
import { ruleForm } from './rules.js';
import { clear, field, h, safely } from './ui.js';

/** A new rule's defaults: SharePoint's sharing and storage alerts, medium and up, to `channel`. */
export function rulePreset(channel) {
  return { name: `Alerts to ${channel.name}`, event_types: ['permission.*', 'storage.*'], min_severity: 'medium', channel_ids: [channel.id] };
}

/** What was done, in words, with a link to the rules. */
function doneNote(text) {
  return h('p.result.ok', { dataset: { ruleOfferDone: '' } }, text, ' ', h('a', { href: '#/rules' }, 'See the rules'));
}

/** The offer card for the channel just added. */
export function offerRule(channel) {
  const body = h('div');
  const card = h('section.card.offer', { 'aria-label': `Add ${channel.name} to a rule`, dataset: { ruleOffer: channel.id } },
    h('h2', {}, `Send alerts to ${channel.name}`),
    h('p.muted', {}, 'A channel gets alerts only through a rule. Add it to a rule now, or create a rule for it.'),
    body);
  const dismiss = h('button', { type: 'button', on: { click: () => card.remove() } }, 'Not now');

  const show = async () => {
    const [rules, channels, tenants] = await Promise.all([get('/rules'), get('/channels'), get('/tenants')]);
    const others = rules.items.filter((r) => !r.channel_ids.includes(channel.id));
    const create = h('button', { type: 'button', on: { click: () => {
      const form = ruleForm(null, channels.items, tenants.items, (saved) => {
        if (!saved) { show(); return; }
        clear(body).append(doneNote(`Rule “${saved.name}” created: it sends ${saved.event_types.join(', ')} of ${saved.min_severity} severity and up to ${channel.name}.`));
      }, rulePreset(channel));
      clear(body).append(form);
      form.querySelector('input').focus();
    } } }, 'Create a rule for it');
    if (!others.length) {
      clear(body).append(h('div.actions', {}, create, dismiss));
      return;
    }
    const pick = h('select', { name: 'rule_id' }, others.map((r) => h('option', { value: r.id }, r.name)));
    const add = h('button.primary', { type: 'button', on: { click: safely(async () => {
      const rule = await get(`/rules/${pick.value}`);
      const saved = await patch(`/rules/${rule.id}`, { channel_ids: [...rule.channel_ids, channel.id] });
      clear(body).append(doneNote(`${channel.name} added to rule “${saved.name}”${saved.enabled ? '' : ' (the rule is disabled: enable it under Rules)'}.`));
    }) } }, 'Add to rule');
    clear(body).append(field('Existing rule', pick), h('div.actions', {}, add, create, dismiss));
  };
  show().catch((error) => clear(body).append(h('p.error', { role: 'alert' }, error.message)));
  return card;
}
