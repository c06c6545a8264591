// Channels: list with delivery health, add/edit (the fields of each type), enable/disable, delete,
// Test with the outcome inline.

import { del, get, patch, post } from './api.js';
import { sparkline } from './chart.js';
import { offerRule } from './channel_rule_offer.js';
import { PREVIEWED, previewMessage } from './message_preview.js';
import { clear, clearErrors, enabledField, field, formError, h, markRequired, onOff, safely, saveOrCancel, showError, showErrorInWords, table, ticketLink, toast, when } from './ui.js';

function headersText(headers) {
  return Object.entries(headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n');
}

function parseHeaders(text) {
  const headers = {};
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf(':');
    if (at < 1) return { error: `“${line}” is not “Header-Name: value”` };
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return { headers };
}

// `protocol`: what the status code is a code of (`SMTP` for email, whose address is a mail server).
function testResult(outcome, protocol = 'HTTP') {
  const parts = [];
  // A ticketing channel's Test: what it checked, and the test ticket it opened.
  if (outcome.checked && outcome.checked.length) parts.push(`✓ Checked ${outcome.checked.join(', ')}`);
  if (outcome.ticket) parts.push(h('span', { dataset: { testTicket: outcome.ticket.id } }, '✓ Opened test ticket ', ticketLink(outcome.ticket)));
  if (outcome.ok && outcome.checked && !outcome.ticket) parts.push(`✓ Nothing was created (${protocol} ${outcome.status_code} in ${outcome.duration_ms} ms)`);
  else if (outcome.ok) parts.push(`✓ Delivered: ${protocol} ${outcome.status_code} in ${outcome.duration_ms} ms`);
  else if (outcome.status_code) parts.push(`✗ Failed: ${outcome.error || `${protocol} ${outcome.status_code}`} (${outcome.error_kind}) in ${outcome.duration_ms} ms`);
  else parts.push(`✗ Failed: ${outcome.error} (${outcome.error_kind}) after ${outcome.duration_ms} ms`);
  if (outcome.response_excerpt) parts.push(`Receiver answered: ${outcome.response_excerpt}`);
  return h(`div.result.${outcome.ok ? 'ok' : 'bad'}`, { dataset: { testResult: outcome.ok ? 'ok' : 'failed' } },
    parts.map((p) => h('div', {}, p)));
}

/**
 * What each channel type asks for, as the router describes it (`GET /channel-types`): the form's
 * words, what the API calls the URL (`urlKey`), whether the URL is a credential shown masked
 * (`secretUrl`), and the type's own settings (`secret`: write-only, shown as ••••last4 and kept
 * when left empty). Read once per page load.
 */
let TYPES = {};

export async function loadTypes() {
  if (Object.keys(TYPES).length) return;
  const { items } = await get('/channel-types');
  TYPES = Object.fromEntries(items.map((t) => [t.type, {
    label: t.label, help: t.help, urlLabel: t.url.label, urlKey: t.url.field === 'url' ? undefined : t.url.field,
    secretUrl: t.url.secret, placeholder: t.url.placeholder, defaultUrl: t.url.default || null, hostOnly: Boolean(t.url.host), headers: t.headers_in_form,
    rate: t.rate_limit_per_second ? String(t.rate_limit_per_second) : '', tickets: Boolean(t.tickets),
    settings: t.settings.map((s) => ({ name: s.name, label: s.label, help: s.help, placeholder: s.placeholder,
      secret: s.secret, required: s.required, type: s.type === 'number' ? 'number' : undefined })),
  }]));
}

export function channelForm(channel, done) {
  const editing = Boolean(channel);
  const name = h('input', { type: 'text', name: 'name', required: true, value: channel ? channel.name : '' });
  const type = h('select', { name: 'type', disabled: editing },
    Object.entries(TYPES).map(([value, t]) => h('option', { value, selected: channel ? channel.type === value : value === 'webhook' }, t.label)));
  const url = h('input', { type: 'url', name: 'url', placeholder: 'https://…' });
  const headers = h('textarea', { name: 'headers', placeholder: 'X-Api-Key: …' });
  headers.value = channel ? headersText(channel.headers) : '';
  const rate = h('input', { type: 'number', name: 'rate_limit_per_second', min: 1, max: 10000, step: 1, placeholder: 'no limit',
    value: channel && channel.rate_limit_per_second ? String(channel.rate_limit_per_second) : '' });
  const [enabledRow, enabled] = enabledField(channel ? channel.enabled : true);
  const urlField = field('URL', url, ' ');
  const nameField = field('Name', name);
  const headersField = field('Custom headers', headers, 'Optional, one per line: Header-Name: value (for receivers that want their own auth header).');
  // Every type's own fields, built once; only the chosen type's are shown and sent.
  const settingFields = Object.entries(TYPES).flatMap(([typeName, t]) => t.settings.map((s) => {
    const stored = channel && channel.type === typeName ? channel[s.name] : undefined;
    // An object (ConnectWise's `companies` map) is edited as its JSON text.
    const current = stored === undefined || stored === null ? '' : (typeof stored === 'object' && !Array.isArray(stored) ? JSON.stringify(stored) : String(stored));
    // `new-password`: a password manager must not fill the admin token into a credential field.
    const input = h('input', { type: s.secret ? 'password' : (s.type || 'text'), name: s.name, autocomplete: s.secret ? 'new-password' : 'off',
      placeholder: s.secret && current ? `${current} (leave empty to keep it)` : (s.placeholder || ''),
      value: s.secret ? '' : current });
    const row = field(s.label, input, s.help || '');
    return { typeName, setting: s, input, row, current };
  }));
  let rateTouched = editing;
  rate.addEventListener('input', () => { rateTouched = true; });
  const kind = () => TYPES[type.value] || TYPES.webhook;
  // Shows the fields of the chosen type, with its words and defaults.
  const showType = () => {
    const t = kind();
    urlField.querySelector('label').textContent = t.urlLabel;
    url.name = t.urlKey || 'url';
    // Email's address is its SMTP server's host name, which a URL field would refuse.
    url.type = t.hostOnly ? 'text' : 'url';
    urlField.dataset.field = url.name;
    urlField.querySelector('.hint').textContent = editing && t.secretUrl
      ? `Now ${channel.url}. Leave empty to keep it; paste a whole new URL to replace it.` : t.help;
    url.placeholder = editing && t.secretUrl ? channel.url : (t.placeholder || 'https://…');
    // A type with a default URL (PagerDuty's Events API) takes it when the field is left empty.
    url.required = !(editing && t.secretUrl) && !t.defaultUrl;
    if (!url.value && editing && !t.secretUrl) url.value = channel.url;
    headersField.hidden = !t.headers;
    for (const f of settingFields) {
      f.row.hidden = f.typeName !== type.value;
      f.input.required = !f.row.hidden && f.setting.required && !(editing && f.setting.secret);
    }
    if (!rateTouched) rate.value = t.rate;
  };
  // Slack and Teams: the sample event drawn as the channel will send it, before saving.
  const preview = h('div', { dataset: { field: '_preview' }, 'aria-live': 'polite' });
  let previewed = null;
  const showPreview = async () => {
    const chosen = type.value;
    if (editing || previewed === chosen) return;
    previewed = chosen;
    clear(preview);
    if (!PREVIEWED.includes(chosen)) return;
    try {
      const drawn = await previewMessage(chosen, kind().label);
      if (previewed === chosen) clear(preview).append(drawn);
    } catch (error) {
      if (previewed === chosen) clear(preview).append(h('p.error', {}, `No preview: ${error.message}`));
    }
  };
  // Required fields say so (`required`, `aria-required` and a * by the label).
  const showRequired = () => {
    markRequired(nameField, true);
    markRequired(urlField, url.required);
    for (const f of settingFields) if (!f.row.hidden) markRequired(f.row, f.input.required);
  };
  // Another type: the errors said of the last one's fields no longer hold.
  type.addEventListener('change', () => { clearErrors(form); showType(); showRequired(); showPreview(); });
  const form = h('form.card', { 'aria-label': editing ? 'Edit channel' : 'Add channel' },
    h('h2', {}, editing ? `Edit ${channel.name}` : 'Add channel'),
    field('Type', type, editing ? 'A channel keeps its type; add a new channel for another.' : 'How alerts are sent: a signed webhook, a message in Slack or Teams, or events in Splunk or Sentinel.'),
    h('p.hint.required-note', {}, 'Fields marked * are required.'),
    nameField,
    urlField,
    headersField,
    settingFields.map((f) => f.row),
    field('Rate limit', rate, 'At most this many requests per second to this receiver (empty: no limit). Slack takes about 1 per second, Teams about 4.'),
    enabledRow,
    preview,
    formError(),
    saveOrCancel(done));
  showType();
  showRequired();
  showPreview();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const t = kind();
    const parsed = t.headers ? parseHeaders(headers.value) : { headers: {} };
    if (parsed.error) {
      showError(form, { problem: { field: 'headers', detail: parsed.error } });
      return;
    }
    const body = { name: name.value, enabled: enabled.checked,
      rate_limit_per_second: rate.value.trim() === '' ? null : Number(rate.value) };
    if (url.value.trim() !== '') body[t.urlKey || 'url'] = url.value.trim();
    if (t.headers) body.headers = parsed.headers;
    for (const f of settingFields.filter((f) => f.typeName === type.value)) {
      const value = f.input.value.trim();
      if (value !== '') body[f.setting.name] = f.setting.type === 'number' ? Number(value) : value;
      // Emptied on edit: back to the default (a credential left empty is kept).
      else if (editing && !f.setting.secret && f.current !== '') body[f.setting.name] = null;
    }
    try {
      const saved = editing ? await patch(`/channels/${channel.id}`, body) : await post('/channels', { ...body, type: type.value });
      done(saved);
    } catch (error) {
      showErrorInWords(form, error);
    }
  });
  return form;
}

export function secretBox(channel) {
  const code = h('code', {}, channel.secret);
  const copy = h('button', { type: 'button', on: { click: async () => {
    try { await navigator.clipboard.writeText(channel.secret); toast('Secret copied'); } catch {
      const range = document.createRange(); range.selectNodeContents(code);
      getSelection().removeAllRanges(); getSelection().addRange(range); toast('Secret selected: press Ctrl+C');
    }
  } } }, 'Copy');
  return h('div.card', { 'aria-label': 'Signing secret' },
    h('strong', {}, `Signing secret for ${channel.name}`),
    h('p.muted', {}, 'It is shown only now. Receivers use it to verify the webhook-signature header.'),
    h('div.secret', {}, code, copy));
}

/** The circuit breaker, when it is not simply closed: a person sees at once that nothing is sent. */
function circuit(health) {
  if (!health || (health.state === 'closed' && !health.consecutive_failures)) return null;
  if (health.state === 'closed') {
    return h('div.muted', { dataset: { circuit: 'closed' } }, `${health.consecutive_failures} failed in a row`);
  }
  const label = health.state === 'open' ? 'circuit open' : 'probing';
  const next = health.state === 'open' ? `next probe ${when(health.open_until)}` : 'one probe on its way';
  return h('div', { dataset: { circuit: health.state } },
    h('span.badge.s-circuit', { title: 'Nothing is sent to this channel until a probe succeeds; waiting deliveries keep their retries.' }, label),
    h('div.muted', {}, `${health.consecutive_failures} failed in a row; ${next}`));
}

/** The channel's newest attempted delivery: when, and how it went (a link to it). */
function lastDelivery(last, enabled) {
  if (!last) return h('div.muted', { dataset: { lastDelivery: 'none' } }, 'No delivery attempted yet');
  const answer = last.status_code ? `HTTP ${last.status_code}` : (last.error_kind || '');
  const words = { succeeded: `✓ delivered${answer ? ` (${answer})` : ''}`, failed: `✗ failed${answer ? ` (${answer})` : ''}`,
    pending: `✗ ${answer || 'failed'}, ${enabled ? 'to be retried' : 'waits until the channel is enabled'}` };
  return h('div.last-delivery', { dataset: { lastDelivery: last.status } }, 'Last: ',
    h('a', { href: `#/logs/${encodeURIComponent(last.id)}` }, words[last.status] || last.status), ' ', h('span.muted', {}, when(last.at)));
}

/** Probe now: an open circuit's probe goes at once instead of at `open_until`. */
function probeButton(channel, reload) {
  const button = h('button', { type: 'button', 'aria-label': `Probe ${channel.name} now`, title: 'Send the next waiting delivery now as the probe: if it succeeds, the circuit closes and the backlog flows',
    on: { click: safely(async () => {
      button.disabled = true; button.textContent = 'Probing…';
      const outcome = await post(`/channels/${channel.id}/probe`);
      toast(outcome.probing ? `Probe sent to ${channel.name}: the next waiting delivery goes now` : `${channel.name}: the circuit is closed, nothing to probe`);
      // The probe's outcome reaches the channel's health once its attempt is recorded.
      setTimeout(reload, 1500);
    }) } }, 'Probe now');
  return button;
}

export async function render(view) {
  const [{ items }, stats] = await Promise.all([get('/channels'), get('/stats/deliveries?hours=24'), loadTypes()]);
  const statsOf = new Map(stats.channels.map((s) => [s.channel_id, s]));
  const formSlot = h('div');
  const notice = h('div');
  const show = (form) => { clear(formSlot).append(form); form.querySelector('input').focus(); };
  const reload = () => render(view);
  const closeForm = (saved, created) => {
    clear(formSlot);
    // A new channel: its secret (shown once), and the offer to send a rule's alerts to it.
    const after = (saved) => reload().then(() => view.querySelector('#channel-notice').append(...(saved.secret ? [secretBox(saved)] : []), offerRule(saved)));
    if (saved && created && saved.secret) { after(saved); }
    else if (saved && created) { toast(`Added ${saved.name}: press Test to see a sample in ${(TYPES[saved.type] || { label: saved.type }).label}`); after(saved); }
    else if (saved) { toast(`Saved ${saved.name}`); reload(); }
  };

  const rows = items.map((channel) => {
    const resultRow = h('tr.test-row', { hidden: true }, h('td', { colspan: 6 }));
    // A ticketing channel's Test checks without creating; "Test ticket" opens a marked one.
    const testButton = (label, body, aria) => {
      const button = h('button', { type: 'button', title: body ? 'Opens a [SPScan TEST] ticket outside any incident' : '', on: { click: async () => {
        button.disabled = true; button.textContent = 'Testing…';
        try {
          const outcome = await post(`/channels/${channel.id}/test`, body);
          clear(resultRow.firstChild).append(testResult(outcome, (TYPES[channel.type] || {}).hostOnly ? 'SMTP' : 'HTTP'));
        } catch (error) {
          clear(resultRow.firstChild).append(h('div.result.bad', {}, error.message));
        }
        resultRow.hidden = false; button.disabled = false; button.textContent = label;
      } } }, label);
      button.setAttribute('aria-label', aria);
      return button;
    };
    const test = testButton('Test', undefined, `Test ${channel.name}`);
    const testTicket = (TYPES[channel.type] || {}).tickets ? testButton('Test ticket', { create: true }, `Open a test ticket in ${channel.name}`) : null;
    const stats = channel.stats || {};
    const daily = statsOf.get(channel.id);
    const open = channel.enabled && channel.health && channel.health.state === 'open';
    const row = h('tr', { dataset: { channelId: channel.id } },
      h('td', {}, h('a.channel-name', { href: `#/logs?${new URLSearchParams({ channel_id: channel.id })}`, title: `The alert log of ${channel.name}` }, h('strong', {}, channel.name)),
        h('div.muted', {}, (TYPES[channel.type] || { label: channel.type }).label)),
      h('td.url.optional', {}, channel.url),
      h('td', {}, onOff(channel.enabled),
        channel.disabled_reason ? h('div.muted', { dataset: { disabledReason: '' } }, `by the router: ${channel.disabled_reason}`) : null,
        channel.type_error ? h('div.muted', { dataset: { typeError: '' } }, channel.type_error) : null,
        channel.enabled ? circuit(channel.health) : null,
        channel.rate_limit_per_second ? h('div.muted', {}, `at most ${channel.rate_limit_per_second}/s`) : null),
      h('td.day', {}, daily ? sparkline(daily.hourly, channel.name) : null,
        h('div', {}, h('span.badge.s-succeeded', { title: 'succeeded in the last 24 hours' }, `${stats.succeeded_24h || 0} ok`), ' ',
          // A red badge only when something failed.
          stats.failed_24h ? h('span.badge.s-failed', { title: 'failed in the last 24 hours' }, `${stats.failed_24h} failed`) : h('span.muted.no-failures', {}, 'none failed'),
          stats.pending ? [' ', h('span.badge.s-pending', { title: 'waiting for an attempt' }, `${stats.pending} waiting`)] : null),
        lastDelivery(daily && daily.last_delivery, channel.enabled)),
      h('td.optional', {}, stats.last_error ? [stats.last_error, h('div.muted', {}, when(stats.last_error_at))] : '—'),
      h('td', {}, h('div.actions', {},
        open ? probeButton(channel, reload) : null,
        test,
        testTicket,
        h('button', { type: 'button', 'aria-label': `Edit ${channel.name}`, on: { click: () => show(channelForm(channel, (s) => closeForm(s, false))) } }, 'Edit'),
        h('button', { type: 'button', 'aria-label': `${channel.enabled ? 'Disable' : 'Enable'} ${channel.name}`, on: { click: safely(async () => {
          await patch(`/channels/${channel.id}`, { enabled: !channel.enabled });
          toast(`${channel.name} ${channel.enabled ? 'disabled' : 'enabled'}`); await reload();
        }) } }, channel.enabled ? 'Disable' : 'Enable'),
        h('button.danger', { type: 'button', 'aria-label': `Delete ${channel.name}`, on: { click: safely(async () => {
          if (!confirm(`Delete channel “${channel.name}”? Its pending deliveries are cancelled; its log stays.`)) return;
          await del(`/channels/${channel.id}`); toast(`Deleted ${channel.name}`); await reload();
        }) } }, 'Delete'))));
    return [row, resultRow];
  });

  clear(view).append(
    h('div.bar', {}, h('h1', {}, 'Channels'),
      h('button.primary', { type: 'button', on: { click: () => show(channelForm(null, (s) => closeForm(s, true))) } }, 'Add channel')),
    h('div#channel-notice', {}, notice),
    formSlot,
    table(['Channel', h('th.optional', {}, 'URL'), 'State', 'Last 24 h', h('th.optional', {}, 'Last error'), 'Actions'], rows.flat(),
      'No channels yet. Add one to start receiving alerts.'));
}
