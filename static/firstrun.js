// The first run: a checklist (tenant → channel → rule → a test event through the rules), each
// step ticked from what the API holds and each with the button that does it, in place; and the
// Connect SPScan panel (ingest URL, which token, a curl to copy). Shown on the Overview until
// every step is done, and always at #/start.
//
// "Done" is read from the router, never remembered by the browser: a tenant exists; a channel
// exists; an enabled rule sends to at least one channel; a delivery exists (an event went
// through the rules). A router set up by the API alone, or in use for a while, shows every step
// ticked and the Overview no longer shows the checklist.

import { get, post } from './api.js';
import { channelForm, loadTypes, secretBox } from './channels.js';
import { rulePreset } from './channel_rule_offer.js';
import { ruleForm } from './rules.js';
import { tenantForm } from './tenants.js';
import { clear, h, toast } from './ui.js';

const SEVERITIES = ['low', 'medium', 'high', 'critical'];

/** What the router holds, for the checklist. */
async function readState() {
  const [tenants, channels, rules, deliveries] = await Promise.all([
    get('/tenants'), get('/channels'), get('/rules'), get('/deliveries?limit=1')]);
  const sending = rules.items.filter((r) => r.enabled && r.channel_ids.length);
  return {
    tenants: tenants.items, channels: channels.items, rules: rules.items, sending,
    done: { tenant: tenants.items.length > 0, channel: channels.items.length > 0, rule: sending.length > 0, test: deliveries.items.length > 0 },
  };
}

const allDone = (state) => Object.values(state.done).every(Boolean);

/** The sample data of an event of `type`, by its category (SPEC section 4). */
function sampleData(type, tenantId) {
  const site = `https://${tenantId.replace(/[^a-z0-9-]/gi, '') || 'contoso'}.sharepoint.com/sites/Finance`;
  const note = 'A test event sent from the admin page (Get started)';
  if (type.startsWith('storage.')) return { site_url: site, current_usage: 96636764160, quota: 107374182400, threshold: 90, note };
  return { site_url: site, resource_path: 'Shared Documents/Q3 forecast.xlsx', permission_type: 'specific_people_link',
    principal: 'outsider@example.net', access_level: 'edit', note };
}

/**
 * A real event the rules should send somewhere: of a type the first sending rule takes, at its
 * minimum severity or above (high at least), for its tenant or the first one.
 */
export function testEvent(state) {
  const rule = state.sending.find((r) => r.event_types.some((t) => !t.startsWith('router.'))) || state.sending[0];
  const types = rule ? rule.event_types.filter((t) => !t.startsWith('router.')) : [];
  const exact = types.find((t) => !t.includes('*'));
  const prefix = types.find((t) => t.endsWith('.*'));
  let type = 'permission.external_share_created';
  if (!types.includes('*') && exact) type = exact;
  else if (!types.includes('*') && prefix === 'storage.*') type = 'storage.threshold_exceeded';
  else if (!types.includes('*') && prefix && prefix !== 'permission.*') type = `${prefix.slice(0, -2)}.test_event`;
  const minimum = rule ? SEVERITIES.indexOf(rule.min_severity) : 0;
  const severity = SEVERITIES[Math.max(minimum, SEVERITIES.indexOf('high'))];
  const tenantId = (rule && rule.tenant_id) || (state.tenants[0] && state.tenants[0].id) || 'contoso';
  return { event: type, severity, tenant_id: tenantId, data: sampleData(type, tenantId) };
}

/** Copies `text`, or selects it in `shown` where the clipboard is not allowed. */
async function copy(text, shown, what) {
  try {
    await navigator.clipboard.writeText(text);
    toast(`${what} copied`);
  } catch {
    const range = document.createRange(); range.selectNodeContents(shown);
    getSelection().removeAllRanges(); getSelection().addRange(range);
    toast(`${what} selected: press Ctrl+C`);
  }
}

function copyable(text, what) {
  const code = h('code', {}, text);
  return h('div.copyable', {}, code, h('button', { type: 'button', 'aria-label': `Copy ${what}`, on: { click: () => copy(text, code, what) } }, 'Copy'));
}

/** The Connect SPScan panel. The page never knows the ingest token: the curl names it `$INGEST_TOKEN`. */
export function connectPanel(state) {
  const url = `${location.origin}/api/v1/events`;
  const event = testEvent(state);
  delete event.data.note;
  // No tenant registered yet: the event carries a whole tenant object, which registers it.
  if (!state.tenants.length) {
    delete event.tenant_id;
    event.tenant = { id: 'contoso', display_name: 'Contoso Ltd', microsoft_tenant_id: 'b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd' };
  }
  const curl = `curl -sS -X POST '${url}' \\\n  -H "Authorization: Bearer $INGEST_TOKEN" \\\n  -H 'Content-Type: application/json' \\\n  -d '${JSON.stringify(event).replace(/'/g, "'\\''")}'`;
  const pre = h('pre.curl', {}, curl);
  return h('section.card.connect', { 'aria-label': 'Connect SPScan', dataset: { connect: '' } },
    h('h2', {}, 'Connect SPScan'),
    h('p', {}, 'In SPScan’s alert settings, send change events to this router:'),
    h('dl.facts', {},
      h('dt', {}, 'Ingest URL'), h('dd', {}, copyable(url, 'Ingest URL')),
      h('dt', {}, 'Token'), h('dd', { dataset: { token: '' } },
        h('p', {}, 'The ingest token (', h('code', {}, 'INGEST_TOKEN'), '), sent as ', h('code', {}, 'Authorization: Bearer <token>'),
          '. It may only send events, so use it rather than the admin token you signed in with.'),
        h('p.muted', {}, 'It is the INGEST_TOKEN the router was started with; if none was set, the router generated one on its first start and printed it once on its standard output, as ',
          h('code', {}, 'INGEST_TOKEN=spr_ingest_…'), '. Only its hash is kept, so this page cannot show it. Lost it? Start the router with a new INGEST_TOKEN (16 or more visible characters): the generated one stops working.'))),
    h('p', {}, 'Try it from a shell (with ', h('code', {}, 'INGEST_TOKEN'), ' set): the event goes through your rules like one from SPScan.'),
    pre,
    h('div.actions', {}, h('button', { type: 'button', on: { click: () => copy(curl, pre, 'curl command') } }, 'Copy curl command')));
}

/** One delivery of the test event, in words, once it is no longer pending (or after 30 s). */
async function followDelivery(item, names, line) {
  const deadline = Date.now() + 30000;
  let delivery = await get(`/deliveries/${item.id}`);
  while (delivery.status === 'pending' && Date.now() < deadline) {
    line.dataset.status = 'pending';
    await new Promise((resolve) => { setTimeout(resolve, 400); });
    delivery = await get(`/deliveries/${item.id}`);
  }
  const rule = names.rules.get(delivery.rule_id) || delivery.rule_id || 'a rule';
  const channel = names.channels.get(delivery.channel_id) || delivery.channel_id;
  const outcome = {
    succeeded: `✓ delivered${delivery.last_status_code ? ` (HTTP ${delivery.last_status_code})` : ''}`,
    failed: `✗ failed: ${delivery.last_error || delivery.last_error_kind || 'the receiver refused it'}`,
    pending: `… not delivered yet${delivery.last_error ? `: ${delivery.last_error}` : ''}; retried on schedule`,
    grouped: '⊞ grouped: it goes out with its group’s notification',
    suppressed: '≈ suppressed as a repeat',
    silenced: '⊝ held by a silence',
  }[delivery.status] || delivery.status;
  line.dataset.status = delivery.status;
  clear(line).append(`Rule “${rule}” matched → channel “${channel}”: ${outcome}. `,
    h('a', { href: `#/logs/${delivery.id}` }, 'Open the delivery'));
}

/** Sends the test event through `POST /events` and shows what became of it. */
async function sendTestEvent(state, result, onSent) {
  const event = testEvent(state);
  clear(result).append(h('p.muted', {}, 'Sending…'));
  const answer = await post('/events', event);
  const names = { rules: new Map(state.rules.map((r) => [r.id, r.name])), channels: new Map(state.channels.map((c) => [c.id, c.name])) };
  const head = h('p', {}, `Sent ${event.event} (${event.severity}) for tenant ${event.tenant_id} as event `, h('code', {}, answer.event_id), '.');
  if (!answer.deliveries.length) {
    // Why not: the rules preview says, per rule, the first reason (nothing stored or sent).
    const preview = await post('/rules/preview', event);
    clear(result).append(head, h('p.result.bad', { dataset: { testOutcome: 'nothing' } }, 'No rule sent it to a channel:'),
      h('ul', {}, preview.rules.map((r) => h('li', {}, `“${r.name}”: `, r.matched ? 'matches, but its channels are disabled' : r.reason.detail))));
    return;
  }
  const lines = answer.deliveries.map(() => h('li', { dataset: { status: 'pending' } }, 'Waiting for the receiver…'));
  clear(result).append(head, h('ul.test-outcome', { dataset: { testOutcome: 'sent' } }, lines));
  onSent();
  await Promise.all(answer.deliveries.map((item, i) => followDelivery(item, names, lines[i])));
}

/** One step of the checklist; each action is an element, or a function of the step's slot and item. */
function step(key, number, done, title, text, ...actions) {
  const slot = h('div.step-slot');
  const buttons = h('div.actions');
  const li = h('li.step', { dataset: { step: key, done: done ? 'true' : 'false' } },
    h('span.tick', { 'aria-hidden': 'true' }, done ? '✓' : String(number)),
    h('div.step-body', {},
      h('div', {}, h('strong', {}, title), ' ', h(`span.badge.s-${done ? 'on' : 'off'}`, {}, done ? 'done' : 'to do')),
      h('p.muted', {}, text),
      buttons,
      slot));
  buttons.append(...actions.filter(Boolean).map((a) => (typeof a === 'function' ? a(slot, li) : a)));
  return li;
}

/** The checklist, drawn into `target`; redrawn from the router after each step. */
async function checklist(target) {
  const state = await readState();
  const redraw = () => checklist(target).catch((error) => toast(error.message));
  const open = (slot, form) => { clear(slot).append(form); const first = form.querySelector('input:not([disabled]), select'); if (first) first.focus(); };
  const left = Object.values(state.done).filter((d) => !d).length;
  const { done } = state;
  const tenant = step('tenant', 1, done.tenant, 'Add a tenant',
    done.tenant ? `${state.tenants.map((t) => t.display_name).join(', ')}.` : 'The Microsoft 365 tenant SPScan watches, as SPScan names it.',
    (slot) => h(done.tenant ? 'button' : 'button.primary', { type: 'button', on: { click: () => open(slot, tenantForm(null, (saved) => (saved ? redraw() : clear(slot)))) } },
      done.tenant ? 'Add another tenant' : 'Add tenant'));
  const channel = step('channel', 2, done.channel, 'Add a channel',
    done.channel ? `${state.channels.map((c) => c.name).join(', ')}.` : 'Where alerts go: a webhook, Slack, Teams, Splunk or Sentinel.',
    (slot) => h(done.tenant && !done.channel ? 'button.primary' : 'button', { type: 'button', on: { click: async () => {
      await loadTypes();
      open(slot, channelForm(null, (saved) => {
        if (!saved) { clear(slot); return; }
        // A webhook's secret is shown only now: kept beside the redrawn checklist.
        redraw().then(() => { if (saved.secret) target.querySelector('[data-step="channel"] .step-slot').append(secretBox(saved)); });
      }));
    } } }, done.channel ? 'Add another channel' : 'Add channel'));
  const rule = step('rule', 3, done.rule, 'Add a rule',
    done.rule ? `${state.sending.map((r) => r.name).join(', ')}.` : 'Which events go to which channels.',
    (slot) => h(done.channel && !done.rule ? 'button.primary' : 'button', { type: 'button', disabled: !done.channel, on: { click: () => {
      const preset = done.channel ? { ...rulePreset(state.channels[0]), name: 'SharePoint alerts', channel_ids: state.channels.map((c) => c.id) } : {};
      open(slot, ruleForm(null, state.channels, state.tenants, (saved) => (saved ? redraw() : clear(slot)), preset));
    } } }, done.rule ? 'Add another rule' : 'Add rule'),
    done.channel ? null : h('span.muted', {}, 'after a channel'));
  const ready = done.tenant && done.rule;
  const test = step('test', 4, done.test, 'Send a test event through the rules',
    'A real sample event, posted to POST /api/v1/events as SPScan would: see which rule matched and which channel got it.',
    (slot, li) => h(ready && !done.test ? 'button.primary' : 'button', { type: 'button', disabled: !ready, on: { click: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        await sendTestEvent(state, slot, () => {
          li.dataset.done = 'true';
          li.querySelector('.tick').textContent = '✓';
          const badge = li.querySelector('.badge'); badge.className = 'badge s-on'; badge.textContent = 'done';
        });
      } catch (error) {
        clear(slot).append(h('p.error', { role: 'alert' }, error.message));
      }
      button.disabled = false;
    } } }, 'Send a test event'),
    ready ? null : h('span.muted', {}, 'after a tenant and a rule'));
  clear(target).append(h('section.card.firstrun', { 'aria-label': 'Get started', dataset: { firstrun: left ? 'open' : 'done' } },
    h('h2', {}, 'Get started'),
    h('p.muted', {}, left ? `${4 - left} of 4 steps done.` : 'Every step is done: SPScan’s events go through your rules.'),
    h('ol.checklist', {}, tenant, channel, rule, test)));
  return state;
}

/** The Overview's top: the checklist and Connect SPScan until every step is done, then a link. */
export async function onOverview(slot) {
  const list = h('div');
  const connect = h('div');
  clear(slot).append(list, connect);
  let state;
  try {
    state = await checklist(list);
  } catch (error) {
    // The Overview itself still shows; only the checklist is missing.
    clear(slot).append(h('p.error', { role: 'alert' }, `The Get started checklist could not be read: ${error.message}`));
    return;
  }
  if (allDone(state)) {
    clear(slot).append(h('p.muted.firstrun-link', {}, h('a', { href: '#/start' }, 'Get started and Connect SPScan'), ': the ingest URL, which token SPScan uses, and a curl to try.'));
  } else {
    connect.append(connectPanel(state));
  }
}

/** #/start: the checklist (ticked or not) and Connect SPScan, always. */
export async function render(view) {
  const list = h('div');
  clear(view).append(h('h1', {}, 'Get started'), list);
  const state = await checklist(list);
  view.append(connectPanel(state));
}
