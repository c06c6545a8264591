// Small DOM helpers. Everything is built with text nodes: no HTML from data, ever.

/** h('tag.class#id', {attrs, on: {click}}, ...children) */
export function h(spec, attrs = {}, ...children) {
  const [tagAndClasses, id] = spec.split('#');
  const [tag, ...classes] = tagAndClasses.split('.');
  const el = document.createElement(tag || 'div');
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(' ');
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'on') for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else if (value !== false && value !== null && value !== undefined) el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** A status badge that reads without colour too (symbol and word). */
export function badge(status) {
  return h(`span.badge.s-${status}`, {}, status);
}

export function onOff(enabled) {
  return h(`span.badge.s-${enabled ? 'on' : 'off'}`, {}, enabled ? 'enabled' : 'disabled');
}

export function severity(value) {
  return h(`span.sev-${value}`, {}, value);
}

const LOCAL = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'long' });

/**
 * A time as this browser's local time with its zone (`5 Dec 2026, 18:02:05 UTC`, `…GMT+1`), as a
 * `<time>` element whose title is the exact ISO time. It reads as that text in a template string
 * too (`last ${when(t)}`), so callers may use it as text or as a node; `—` when there is none.
 */
export function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const text = LOCAL.format(date);
  const el = h('time', { datetime: date.toISOString(), title: date.toISOString() }, text);
  el.toString = () => text;
  return el;
}

/** Wraps a click handler so an API error shows as a message instead of failing silently. */
export function safely(handler) {
  return async (...args) => {
    try { await handler(...args); } catch (error) { toast(error.message); }
  };
}

export function toast(message) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 3500);
}

/** A labelled field: label text, the control, an optional hint, and a slot for its error. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  return h('div.field', { dataset: { field: control.name || '' } },
    h('label', { for: id }, label), control,
    hint ? h('div.hint', {}, hint) : null,
    h('p.error', { hidden: true, role: 'alert' }));
}

/** Clears the errors shown in a form. */
export function clearErrors(form) {
  form.querySelectorAll('.error').forEach((p) => { p.hidden = true; p.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
}

/**
 * Shows an API error next to the field it concerns (`problem.field`, e.g. `url`,
 * `headers.X-Key`, `event_types[1]`), or at the form's foot when no field matches.
 */
export function showError(form, error) {
  clearErrors(form);
  const problem = error.problem || {};
  const name = (problem.field || '').split(/[.[]/)[0];
  // A field of that name that is shown (forms may hold hidden fields of other channel types).
  const shown = name ? [...form.querySelectorAll(`[data-field="${CSS.escape(name)}"]`)].find((el) => !el.hidden) : null;
  const holder = shown || form.querySelector('[data-field="_form"]');
  const slot = holder.querySelector('.error');
  slot.textContent = problem.detail || error.message;
  slot.hidden = false;
  const control = holder.querySelector('input, select, textarea');
  if (control) { control.setAttribute('aria-invalid', 'true'); control.focus(); }
}

/** An "Enabled" checkbox field: `[field, checkbox]`. */
export function enabledField(checked) {
  const box = h('input', { type: 'checkbox', name: 'enabled' });
  box.checked = checked;
  return [h('div.field', { dataset: { field: 'enabled' } }, h('label.inline', {}, box, 'Enabled'), h('p.error', { hidden: true })), box];
}

/** A form's Save and Cancel buttons; Cancel calls `done(null)`. */
export function saveOrCancel(done) {
  return h('div.actions', {},
    h('button.primary', { type: 'submit' }, 'Save'),
    h('button', { type: 'button', on: { click: () => done(null) } }, 'Cancel'));
}

/** The slot for errors that belong to no single field. */
export function formError() {
  return h('div', { dataset: { field: '_form' } }, h('p.error', { hidden: true, role: 'alert' }));
}

/**
 * A table of `rows` under `headers` (strings or `th` elements), or `empty` when there are none.
 * Each cell gets its column's name as `data-label`, so on a narrow screen, where rows become
 * cards, each value is shown beside its name (style.css, "Any screen").
 */
export function table(headers, rows, empty) {
  if (!rows.length) return h('p.muted', {}, empty);
  const heads = headers.map((x) => (typeof x === 'string' ? h('th', {}, x) : x));
  const names = heads.map((th) => th.textContent.trim());
  for (const row of rows.flat(2)) {
    if (!(row instanceof HTMLTableRowElement)) continue;
    [...row.cells].forEach((cell, i) => {
      if (cell.colSpan > 1 || cell.dataset.label !== undefined) return;
      cell.dataset.label = names[i] || '';
      if (names[i] === 'Actions') cell.classList.add('cell-actions');
    });
  }
  return h('div.table-wrap', {}, h('table.cards', {},
    h('thead', {}, h('tr', {}, heads)),
    h('tbody', {}, rows)));
}

/**
 * Marks a field required, or not: `required` and `aria-required` on its control, and the row's
 * `required` class, which puts a visible * after its label (style.css; the label's own text stays
 * as it is).
 */
export function markRequired(row, on) {
  const control = row.querySelector('input, select, textarea');
  control.required = on;
  control.setAttribute('aria-required', on ? 'true' : 'false');
  row.classList.toggle('required', on);
}

/**
 * A problem in words a person reads, for the field labelled `label`: "URL must start with
 * https:// or http:// (it was “ftp://x”)" rather than "url: `ftp://x` must start with …".
 */
export function inWords(problem, label) {
  const field = problem.field || '';
  let message = problem.detail || problem.title || '';
  if (!label) return message.replace(/`([^`]*)`/g, '“$1”');
  if (field && message.startsWith(`${field}: `)) message = message.slice(field.length + 2);
  let given = null;
  const quoted = /^`([^`]*)`\s+/.exec(message);
  if (quoted) { given = quoted[1]; message = message.slice(quoted[0].length); }
  message = message.replace(/`([^`]*)`/g, '“$1”');
  // A part inside the field (`headers.X-Key`) is named after the label.
  const inside = field.replace(/^[^.[]+\.?/, '');
  const subject = inside ? `${label} (${inside})` : label;
  return `The ${subject} ${message}${given !== null ? ` (it was “${given}”)` : ''}`.replace(/\s*$/, '').replace(/([^.!?])$/, '$1.');
}

/**
 * Shows an API error next to the field it concerns, in words (see [`inWords`]), naming the field
 * by its label; at the form's foot when no shown field matches.
 */
export function showErrorInWords(form, error) {
  const problem = error.problem || {};
  const name = (problem.field || '').split(/[.[]/)[0];
  const shown = name ? [...form.querySelectorAll(`[data-field="${CSS.escape(name)}"]`)].find((el) => !el.hidden) : null;
  const label = shown && shown.querySelector(':scope > label, :scope > legend');
  showError(form, { message: error.message, problem: { ...problem, detail: inWords({ ...problem, detail: problem.detail || error.message }, label ? label.textContent.trim() : null) } });
}

/**
 * The ticket, page or message a delivery wrote to (PagerDuty, ticketing, email): a link when
 * the system gave a URL (only an http(s) one), else its key or id as code.
 */
export function ticketLink(ticket) {
  const label = ticket.key || ticket.id;
  const safe = typeof ticket.url === 'string' && /^https?:\/\//i.test(ticket.url);
  return safe ? h('a', { href: ticket.url, target: '_blank', rel: 'noopener noreferrer' }, label) : h('code', {}, label);
}
