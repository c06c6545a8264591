// The rule form's noise-control sections (SPEC section 16): priority, grouping, suppression and
// active hours, each with help in plain words computed from what is typed, and the one-line
// summary of a rule's noise settings in the rules list. A section that is off sends `null`.

import { h } from './ui.js';
import { describeLeaf, fieldName, pathPicker, rowsOf } from './conditions.js';

const DAYS = [['mon', 'Monday'], ['tue', 'Tuesday'], ['wed', 'Wednesday'], ['thu', 'Thursday'], ['fri', 'Friday'], ['sat', 'Saturday'], ['sun', 'Sunday']];
const TIME_ZONES = [
  'UTC', 'Europe/London', 'Europe/Dublin', 'Europe/Lisbon', 'Europe/Paris', 'Europe/Berlin', 'Europe/Amsterdam',
  'Europe/Brussels', 'Europe/Madrid', 'Europe/Rome', 'Europe/Zurich', 'Europe/Vienna', 'Europe/Stockholm', 'Europe/Oslo',
  'Europe/Copenhagen', 'Europe/Helsinki', 'Europe/Warsaw', 'Europe/Prague', 'Europe/Athens', 'Europe/Istanbul',
  'Europe/Kyiv', 'Africa/Johannesburg', 'Africa/Lagos', 'Africa/Nairobi', 'Asia/Dubai', 'Asia/Kolkata', 'Asia/Singapore',
  'Asia/Hong_Kong', 'Asia/Shanghai', 'Asia/Tokyo', 'Asia/Seoul', 'Australia/Perth', 'Australia/Brisbane',
  'Australia/Sydney', 'Australia/Melbourne', 'Pacific/Auckland', 'America/St_Johns', 'America/Halifax',
  'America/New_York', 'America/Toronto', 'America/Chicago', 'America/Mexico_City', 'America/Denver', 'America/Phoenix',
  'America/Los_Angeles', 'America/Vancouver', 'America/Anchorage', 'Pacific/Honolulu', 'America/Sao_Paulo',
  'America/Buenos_Aires', 'America/Bogota',
];
const SIEM_TYPES = ['splunk', 'sentinel'];

// ---- durations, as the API writes them (30s, 5m, 2h, 1h 30m) ----

const UNITS = { ms: 0.001, msec: 0.001, s: 1, sec: 1, secs: 1, second: 1, seconds: 1, m: 60, min: 60, mins: 60, minute: 60,
  minutes: 60, h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600, d: 86400, day: 86400, days: 86400, w: 604800, week: 604800, weeks: 604800 };

/** Seconds in "1h 30m", or null when it is not a duration. */
export function seconds(text) {
  const t = String(text || '').trim();
  if (!/^(\d+\s*[a-z]+\s*)+$/i.test(t)) return null;
  let total = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)\s*([a-z]+)/gi)) {
    const factor = UNITS[unit.toLowerCase()];
    if (factor === undefined) return null;
    total += Number(n) * factor;
  }
  return total;
}

/** 300 → "5 minutes", 30 → "30 s", 86400 → "24 hours", 604800 → "7 days". */
export function spoken(secs) {
  const say = (n, one) => `${n} ${one}${n === 1 ? '' : 's'}`;
  if (secs > 0 && secs < 1) return `${Math.round(secs * 1000)} ms`;
  if (secs >= 2 * 86400 && secs % 86400 === 0) return say(secs / 86400, 'day');
  const hours = Math.floor(secs / 3600);
  const minutes = Math.floor((secs % 3600) / 60);
  const rest = Number((secs % 60).toFixed(3));
  const parts = [hours ? say(hours, 'hour') : null, minutes ? say(minutes, 'minute') : null, rest ? `${rest} s` : null].filter(Boolean);
  return parts.length ? parts.join(' ') : '0 s';
}

/** "site and principal" for ["/data/site_url", "/data/principal"]. */
function names(by) {
  const list = by.map(fieldName);
  return list.length <= 1 ? list.join('') : `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`;
}

// ---- help texts ----

export function groupHelp(by, wait, interval) {
  const w = seconds(wait || '30s');
  const i = seconds(interval || '5m');
  if (w === null || i === null) return 'Write wait and interval as 30s, 5m, 2h or 1h 30m.';
  if (w > i) return `Wait (${spoken(w)}) must not be longer than the interval (${spoken(i)}).`;
  const per = by.length ? `One message per ${names(by)}` : 'One message per rule and channel';
  const first = w === 0 ? 'the first as soon as its first event arrives' : `the first ${spoken(w)} after its first event`;
  return `${per} every ${spoken(i)}, ${first}. A group with no new event for ${spoken(i)} closes; the next event opens a new one.`;
}

export function suppressHelp(by, window) {
  const f = seconds(window);
  if (f === null) return 'Write how long as 30m, 24h or 7d.';
  const repeat = by.length ? `A repeat with the same ${names(by)} is not sent again` : 'After an event is sent, no other event of this rule goes to that channel';
  return `${repeat} for ${spoken(f)}; a more severe one is sent and starts a new window.`;
}

function daysText(days) {
  const set = DAYS.map(([d]) => d).filter((d) => days.includes(d));
  const full = (d) => DAYS.find(([x]) => x === d)[1];
  if (set.length === 7) return 'every day';
  if (set.join() === 'mon,tue,wed,thu,fri') return 'Monday to Friday';
  if (set.join() === 'sat,sun') return 'Saturday and Sunday';
  if (!set.length) return 'no day';
  return set.map((d) => full(d).slice(0, 3)).join(', ');
}

function windowText(w) {
  const overnight = w.from && w.to && w.from > w.to && w.to !== '00:00' ? ' the next day' : '';
  const span = `${daysText(w.days || [])}, ${w.from || '?'} to ${w.to || '?'}${overnight}`;
  return `${w.invert ? 'outside ' : ''}${span} (${w.timezone || 'no time zone'})`;
}

export function hoursHelp(windows) {
  if (!windows.length) return 'Add a window.';
  const listed = windows.map(windowText);
  return `This rule matches ${listed.length > 1 ? `during any of: ${listed.join('; ')}` : listed[0]}. `
    + 'Outside them it does not match, so another rule (an after-hours pager) can take the event. '
    + 'A group opened inside a window still sends after it ends.';
}

// ---- sections ----

/** A fieldset whose legend is an on/off checkbox; the body shows while it is on. */
function section(title, on, body, path) {
  const box = h('input', { type: 'checkbox' });
  box.checked = on;
  const content = h('div.section-body', {}, body);
  const set = h('fieldset.field.noise', { dataset: { path, label: title } },
    h('legend', {}, h('label.inline', {}, box, h('strong', {}, title))), content, h('p.error', { hidden: true, role: 'alert' }));
  const sync = () => { content.hidden = !box.checked; set.classList.toggle('off', !box.checked); };
  box.addEventListener('change', sync);
  sync();
  return { set, box };
}

/** A list of pointers (`by`), one picker per row. */
function byList(pointers, label, onChange) {
  const rows = h('div.by-rows');
  const add = (value) => {
    const input = pathPicker(value, label);
    const row = h('div.by-row', {}, input,
      h('button.remove', { type: 'button', 'aria-label': `Remove this field from ${label}`, title: 'Remove',
        on: { click: () => { row.remove(); onChange(); } } }, '×'),
      h('p.error', { hidden: true, role: 'alert' }));
    input.addEventListener('input', onChange);
    rows.append(row);
    return input;
  };
  pointers.forEach(add);
  const element = h('div.by', {}, rows,
    h('button', { type: 'button', on: { click: () => { add('').focus(); onChange(); } } }, '+ Add field'));
  /** The pointers typed, each input named `at[i]` for errors. */
  const read = (at) => [...rows.querySelectorAll('input')].filter((i) => i.value.trim()).map((input, i) => {
    input.dataset.path = `${at}[${i}]`;
    input.dataset.label = `${label}, field ${i + 1}`;
    return input.value.trim();
  });
  return { element, read, peek: () => [...rows.querySelectorAll('input')].map((i) => i.value.trim()).filter(Boolean) };
}

function labelled(text, control, path, hint) {
  control.id = control.id || `n-${Math.random().toString(36).slice(2)}`;
  if (path) { control.dataset.path = path; control.dataset.label = text; }
  return h('div.field', {}, h('label', { for: control.id }, text), control, hint ? h('div.hint', {}, hint) : null,
    h('p.error', { hidden: true, role: 'alert' }));
}

/** Priority: a whole number, default 100. */
export function prioritySection(rule) {
  const input = h('input', { type: 'number', name: 'priority', min: 0, step: 1, value: rule ? String(rule.priority) : '100' });
  const element = labelled('Priority', input, 'priority',
    'When several matching rules name the same channel, the rule with the lowest priority decides how it is sent (then the oldest). Default 100.');
  return { element, read: () => (input.value.trim() === '' ? null : Number(input.value)) };
}

const siemNote = () => h('p.hint.siem', {}, 'Splunk and Sentinel channels receive every event: grouping and suppression do not apply to them.');

/** Grouping: `{"by","wait","interval"}`. */
export function groupSection(group) {
  const help = h('p.help', { dataset: { help: 'group' } });
  const refresh = () => { help.textContent = groupHelp(by.peek(), wait.value, interval.value); };
  const by = byList(group ? group.by : ['/data/site_url'], 'Group by', refresh);
  const wait = h('input', { type: 'text', value: group ? group.wait : '30s', placeholder: '30s' });
  const interval = h('input', { type: 'text', value: group ? group.interval : '5m', placeholder: '5m' });
  [wait, interval].forEach((i) => i.addEventListener('input', refresh));
  const byField = h('div.field', { dataset: { path: 'group.by', label: 'Group by' } },
    h('span.label', {}, 'Group by'), by.element,
    h('div.hint', {}, 'Events with the same values at these fields share one message; none: one message per rule and channel.'),
    h('p.error', { hidden: true, role: 'alert' }));
  const { set, box } = section('Group events into one message', Boolean(group), [
    byField,
    h('div.grid2', {},
      labelled('Wait', wait, 'group.wait', 'Before the first message of a group (0s to the interval).'),
      labelled('Interval', interval, 'group.interval', 'Between later messages, at most 24h.')),
    help, siemNote()], 'group');
  refresh();
  return {
    element: set,
    read() {
      if (!box.checked) return null;
      const value = { by: by.read('group.by') };
      if (wait.value.trim()) value.wait = wait.value.trim();
      if (interval.value.trim()) value.interval = interval.value.trim();
      return value;
    },
  };
}

/** Suppression: `{"by","for"}`. */
export function suppressSection(suppress) {
  const help = h('p.help', { dataset: { help: 'suppress' } });
  const refresh = () => { help.textContent = suppressHelp(by.peek(), window.value); };
  const by = byList(suppress ? suppress.by : ['/data/principal'], 'Repeat means the same', refresh);
  const window = h('input', { type: 'text', value: suppress ? suppress.for : '24h', placeholder: '24h' });
  window.addEventListener('input', refresh);
  const byField = h('div.field', { dataset: { path: 'suppress.by', label: 'Repeat means the same' } },
    h('span.label', {}, 'Repeat means the same'), by.element,
    h('div.hint', {}, 'An event with the same values at these fields as one sent earlier is a repeat; none: every event is.'),
    h('p.error', { hidden: true, role: 'alert' }));
  const { set, box } = section('Do not resend repeats', Boolean(suppress), [
    byField, labelled('For', window, 'suppress.for', 'From 1s to 30 days, such as 30m, 24h or 7d.'), help, siemNote()], 'suppress');
  refresh();
  return {
    element: set,
    read() {
      if (!box.checked) return null;
      return { by: by.read('suppress.by'), for: window.value.trim() };
    },
  };
}

function hoursWindow(original, onChange, onRemove) {
  const zone = h('input', { type: 'text', list: 'time-zones', spellcheck: 'false', autocomplete: 'off',
    value: original ? original.timezone || '' : Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC' });
  const chosen = new Set(original ? original.days || [] : ['mon', 'tue', 'wed', 'thu', 'fri']);
  const dayBoxes = DAYS.map(([d, name]) => {
    const b = h('input', { type: 'checkbox', value: d });
    b.checked = chosen.has(d);
    return h('label.inline', { title: name }, b, name.slice(0, 3));
  });
  const from = h('input', { type: 'text', inputmode: 'numeric', placeholder: '08:00', value: original ? original.from || '' : '08:00' });
  const to = h('input', { type: 'text', inputmode: 'numeric', placeholder: '18:00', value: original ? original.to || '' : '18:00' });
  const invert = h('input', { type: 'checkbox' });
  invert.checked = Boolean(original && original.invert);
  const days = h('div.field', {}, h('span.label', {}, 'Days'), h('div.days', {}, dayBoxes), h('p.error', { hidden: true, role: 'alert' }));
  const element = h('div.window', {},
    h('div.grid3', {}, labelled('Time zone', zone, null), labelled('From', from, null, 'HH:MM, inclusive'),
      labelled('To', to, null, 'HH:MM, exclusive; 24:00 is midnight')),
    days,
    h('div.field', {}, h('label.inline', {}, invert, 'Invert: match outside these hours'), h('p.error', { hidden: true, role: 'alert' })),
    h('div.actions', {}, h('button.danger', { type: 'button', on: { click: () => { element.remove(); onRemove(); } } }, 'Remove window')));
  element.addEventListener('input', onChange);
  element.addEventListener('change', onChange);
  const peek = () => {
    const value = { ...(original || {}), timezone: zone.value.trim(),
      days: dayBoxes.map((l) => l.querySelector('input')).filter((b) => b.checked).map((b) => b.value),
      from: from.value.trim(), to: to.value.trim() };
    if (invert.checked) value.invert = true; else if (original && 'invert' in original) value.invert = false; else delete value.invert;
    return value;
  };
  /** The window as typed, its inputs named `at.timezone` and so on. */
  element.read = (at, index, count) => {
    const name = count > 1 ? `Window ${index + 1}, ` : '';
    element.dataset.path = at;
    element.dataset.label = `Window ${index + 1}`;
    const mark = (el, key, words) => { el.dataset.path = `${at}.${key}`; el.dataset.label = `${name}${words}`; };
    mark(zone, 'timezone', 'time zone');
    mark(from, 'from', 'from');
    mark(to, 'to', 'to');
    mark(days, 'days', 'days');
    mark(invert, 'invert', 'invert');
    return peek();
  };
  element.peek = peek;
  return element;
}

/** Active hours: one window or a list (the shape the rule had is kept). */
export function hoursSection(hours) {
  const list = hours ? (Array.isArray(hours) ? hours : [hours]) : [];
  const help = h('p.help', { dataset: { help: 'active_hours' } });
  const windows = h('div.windows');
  const refresh = () => { help.textContent = hoursHelp([...windows.children].map((w) => w.peek())); };
  const add = (original) => windows.append(hoursWindow(original, refresh, refresh));
  list.forEach(add);
  if (!list.length) add(null);
  const { set, box } = section('Only at certain hours', Boolean(hours), [
    windows,
    h('div.actions', {}, h('button', { type: 'button', on: { click: () => { add(null); refresh(); } } }, '+ Add window')),
    help,
    h('datalist#time-zones', {}, [...new Set([Intl.DateTimeFormat().resolvedOptions().timeZone, ...TIME_ZONES])].filter(Boolean).map((z) => h('option', { value: z })))],
  'active_hours');
  refresh();
  return {
    element: set,
    read() {
      const all = [...windows.children];
      if (!box.checked || !all.length) return null;
      if (all.length === 1 && !Array.isArray(hours)) return all[0].read('active_hours', 0, 1);
      return all.map((w, i) => w.read(`active_hours[${i}]`, i, all.length));
    },
  };
}

/** A note naming the chosen channels that take every event (Splunk, Sentinel). */
export function siemChannels(channels, chosenIds) {
  const siem = channels.filter((c) => chosenIds.includes(c.id) && SIEM_TYPES.includes(c.type));
  if (!siem.length) return null;
  return `${siem.map((c) => c.name).join(', ')} ${siem.length === 1 ? 'is a SIEM channel: it receives' : 'are SIEM channels: they receive'} `
    + 'every matching event; grouping and suppression apply only to the other channels.';
}

// ---- the rules list ----

/** Short lines saying what a rule does about noise, for the rules list. */
export function summary(rule) {
  const lines = [];
  if (rule.priority !== 100) lines.push(`priority ${rule.priority}`);
  if (rule.conditions) {
    const rows = rowsOf(rule.conditions);
    if (rows && rows.leaves.length === 1) lines.push(`when ${describeLeaf(rows.leaves[0])}`);
    else if (rows) lines.push(`when ${rows.join === 'all' ? 'all' : 'any'} of ${rows.leaves.length} conditions hold`);
    else lines.push('when its conditions hold (nested)');
  }
  if (rule.group) {
    const per = rule.group.by.length ? `per ${names(rule.group.by)}` : 'per channel';
    lines.push(`grouped ${per}: after ${rule.group.wait}, then every ${rule.group.interval}`);
  }
  if (rule.suppress) {
    lines.push(`repeats${rule.suppress.by.length ? ` of the same ${names(rule.suppress.by)}` : ''} held for ${rule.suppress.for}`);
  }
  if (rule.active_hours) {
    const list = Array.isArray(rule.active_hours) ? rule.active_hours : [rule.active_hours];
    lines.push(`active ${list.map(windowText).join('; ')}`);
  }
  return lines;
}
