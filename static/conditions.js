// The rule form's condition builder (SPEC section 16): rows of path / operator / value joined by
// `all` or `any`, a path picker over the payload's known fields (any other JSON pointer may be
// typed), and an "Advanced (JSON)" box. A tree the rows cannot show (nesting, `not`, a value of
// another type) opens in the box and is kept as written: never dropped, never rewritten.

import { h } from './ui.js';

/** Known fields of the payload a webhook receives (section 4, the O365 mapping's `data`). */
export const PAYLOAD_FIELDS = [
  { path: '/event', name: 'event type' },
  { path: '/severity', name: 'severity' },
  { path: '/tenant/id', name: 'tenant' },
  { path: '/tenant/display_name', name: 'tenant name' },
  { path: '/tenant/microsoft_tenant_id', name: 'Microsoft tenant ID' },
  { path: '/data/site_url', name: 'site' },
  { path: '/data/resource_path', name: 'file or folder' },
  { path: '/data/principal', name: 'principal' },
  { path: '/data/permission_type', name: 'permission type' },
  { path: '/data/access_level', name: 'access level' },
  { path: '/data/actor', name: 'actor' },
  { path: '/data/threshold', name: 'threshold (% of quota)', number: true },
  { path: '/data/current_usage', name: 'current usage (bytes)', number: true },
  { path: '/data/quota', name: 'quota (bytes)', number: true },
  { path: '/data/source/operation', name: 'audit operation' },
  { path: '/data/source/workload', name: 'workload' },
  { path: '/data/source/client_ip', name: 'client IP' },
];
const PATHS_LIST = 'payload-paths';

/** What people call the field at `pointer`: "site" for /data/site_url, else the pointer. */
export function fieldName(pointer) {
  const known = PAYLOAD_FIELDS.find((f) => f.path === pointer);
  return known ? known.name.replace(/ \(.*\)$/, '') : pointer;
}

/** The datalist the path pickers offer; put it in the form once. */
export function pathList() {
  return h(`datalist#${PATHS_LIST}`, {}, PAYLOAD_FIELDS.map((f) => h('option', { value: f.path }, f.name)));
}

/** A text input for a JSON pointer that offers the known fields and takes any other. */
export function pathPicker(value, label) {
  return h('input.path', { type: 'text', list: PATHS_LIST, value: value || '', placeholder: '/data/principal',
    spellcheck: 'false', autocomplete: 'off', 'aria-label': label });
}

const OPERATORS = [
  ['eq', 'equals'], ['neq', 'does not equal'], ['in', 'is one of'], ['nin', 'is none of'],
  ['contains', 'contains'], ['prefix', 'starts with'], ['suffix', 'ends with'], ['regex', 'matches the pattern'],
  ['gt', 'is more than'], ['gte', 'is at least'], ['lt', 'is less than'], ['lte', 'is at most'], ['exists', 'exists'],
];
const TEXT_OPS = ['contains', 'prefix', 'suffix'];
const NUMBER_OPS = ['gt', 'gte', 'lt', 'lte'];
const LIST_OPS = ['in', 'nin'];
const TYPED_OPS = ['eq', 'neq', 'in', 'nin'];

/** Operator words for summaries: "ends with". */
export const opWords = (op) => (OPERATORS.find(([o]) => o === op) || [op, op])[1];

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);

/** Whether the builder's row can show this leaf exactly as written. */
function rowCanShow(leaf) {
  if (!isObject(leaf) || typeof leaf.path !== 'string' || typeof leaf.op !== 'string') return false;
  const keys = Object.keys(leaf);
  const allowed = ['path', 'op', 'value'].concat(TEXT_OPS.includes(leaf.op) ? ['case_insensitive'] : []);
  if (!keys.includes('value') || keys.some((k) => !allowed.includes(k))) return false;
  if ('case_insensitive' in leaf && typeof leaf.case_insensitive !== 'boolean') return false;
  const v = leaf.value;
  if (leaf.op === 'eq' || leaf.op === 'neq') return typeof v === 'string' || isNumber(v) || typeof v === 'boolean';
  if (LIST_OPS.includes(leaf.op)) {
    if (!Array.isArray(v)) return false;
    // Shown as one comma-separated text: strings that survive the split, or numbers.
    return v.every(isNumber) || v.every((s) => typeof s === 'string' && s !== '' && s === s.trim() && !s.includes(','));
  }
  if (TEXT_OPS.includes(leaf.op) || leaf.op === 'regex') return typeof v === 'string';
  if (NUMBER_OPS.includes(leaf.op)) return isNumber(v);
  if (leaf.op === 'exists') return typeof v === 'boolean';
  return false;
}

/** The rows of a tree, or `null` when the builder cannot show it. */
export function rowsOf(tree) {
  if (tree === null || tree === undefined) return { join: 'all', leaves: [], bare: false };
  if (rowCanShow(tree)) return { join: 'all', leaves: [tree], bare: true };
  if (!isObject(tree) || Object.keys(tree).length !== 1) return null;
  const join = 'all' in tree ? 'all' : 'any' in tree ? 'any' : null;
  const leaves = join && tree[join];
  if (!Array.isArray(leaves) || !leaves.length || !leaves.every(rowCanShow)) return null;
  return { join, leaves, bare: false };
}

function kindOf(leaf) {
  if (!leaf) return 'text';
  const v = LIST_OPS.includes(leaf.op) ? leaf.value[0] : leaf.value;
  return isNumber(v) ? 'number' : typeof v === 'boolean' ? 'boolean' : 'text';
}

/** A number as typed, or what was typed (the API then says what is wrong with it). */
function numberOf(text) {
  const t = String(text).trim();
  if (t === '') return null;
  return Number.isFinite(Number(t)) ? Number(t) : t;
}

/** One row: path, operator, value (an input that fits the operator), remove. */
function conditionRow(leaf, onRemove) {
  const row = h('div.cond-row');
  const path = pathPicker(leaf ? leaf.path : '', 'Path');
  const op = h('select.op', { 'aria-label': 'Operator' }, OPERATORS.map(([value, words]) => h('option', { value }, `${words} (${value})`)));
  op.value = leaf ? leaf.op : 'eq';
  const kind = h('select.kind', { 'aria-label': 'Value type' },
    h('option', { value: 'text' }, 'text'), h('option', { value: 'number' }, 'number'), h('option', { value: 'boolean' }, 'true/false'));
  kind.value = kindOf(leaf);
  const v = leaf ? leaf.value : '';
  const text = h('input.value-text', { type: 'text', 'aria-label': 'Value',
    value: Array.isArray(v) ? v.join(', ') : typeof v === 'string' ? v : '' });
  const number = h('input.value-number', { type: 'number', step: 'any', 'aria-label': 'Value', value: isNumber(v) ? String(v) : '' });
  const flag = h('select.value-bool', { 'aria-label': 'Value' }, h('option', { value: 'true' }, 'true'), h('option', { value: 'false' }, 'false'));
  flag.value = v === false ? 'false' : 'true';
  const caseBox = h('input', { type: 'checkbox' });
  caseBox.checked = Boolean(leaf && leaf.case_insensitive);
  const ignoreCase = h('label.inline.ignore-case', {}, caseBox, 'ignore case');
  const remove = h('button.remove', { type: 'button', 'aria-label': 'Remove this condition', title: 'Remove', on: { click: () => onRemove(row) } }, '×');
  const error = h('p.error', { hidden: true, role: 'alert' });

  function update() {
    const o = op.value;
    kind.hidden = !TYPED_OPS.includes(o);
    kind.querySelector('option[value="boolean"]').hidden = LIST_OPS.includes(o);
    if (LIST_OPS.includes(o) && kind.value === 'boolean') kind.value = 'text';
    const k = kind.value;
    const showsNumber = NUMBER_OPS.includes(o) || ((o === 'eq' || o === 'neq') && k === 'number');
    const showsFlag = o === 'exists' || ((o === 'eq' || o === 'neq') && k === 'boolean');
    number.hidden = !showsNumber;
    flag.hidden = !showsFlag;
    text.hidden = showsNumber || showsFlag;
    flag.querySelector('option[value="true"]').textContent = o === 'exists' ? 'yes (present)' : 'true';
    flag.querySelector('option[value="false"]').textContent = o === 'exists' ? 'no (absent)' : 'false';
    text.placeholder = LIST_OPS.includes(o) ? 'comma-separated, e.g. edit, full_control' : o === 'regex' ? 'the whole value must match' : '';
    ignoreCase.hidden = !TEXT_OPS.includes(o);
  }
  // A known numeric field (quota, threshold) takes numbers.
  path.addEventListener('change', () => {
    const known = PAYLOAD_FIELDS.find((f) => f.path === path.value.trim());
    if (known && TYPED_OPS.includes(op.value)) { kind.value = known.number ? 'number' : 'text'; update(); }
  });
  op.addEventListener('change', () => {
    if (number.hidden === false && number.value === '' && isNumber(numberOf(text.value))) number.value = text.value.trim();
    update();
  });
  kind.addEventListener('change', update);
  update();

  row.append(path, op, kind, text, number, flag, ignoreCase, remove, error);

  /** The leaf as typed, its controls named by where they sit (`conditions.any[2]`). */
  row.read = (at, index) => {
    const o = op.value;
    const result = { path: path.value.trim(), op: o };
    const k = kind.value;
    if (LIST_OPS.includes(o)) {
      const items = text.value.split(',').map((s) => s.trim()).filter(Boolean);
      result.value = k === 'number' ? items.map(numberOf) : items;
    } else if (NUMBER_OPS.includes(o) || ((o === 'eq' || o === 'neq') && k === 'number')) {
      result.value = numberOf(number.value);
    } else if (o === 'exists' || ((o === 'eq' || o === 'neq') && k === 'boolean')) {
      result.value = flag.value === 'true';
    } else {
      result.value = text.value;
    }
    // `case_insensitive: false` is written only where the rule already had it.
    if (TEXT_OPS.includes(o) && (caseBox.checked || (leaf && 'case_insensitive' in leaf))) result.case_insensitive = caseBox.checked;
    const name = `Condition ${index + 1}`;
    row.dataset.path = at === 'conditions' ? '' : at;
    row.dataset.label = name;
    const mark = (el, key, words) => { el.dataset.path = `${at}.${key}`; el.dataset.label = `${name}, ${words}`; };
    mark(path, 'path', 'path');
    mark(op, 'op', 'operator');
    [text, number, flag].forEach((el) => mark(el, 'value', 'value'));
    mark(caseBox, 'case_insensitive', 'ignore case');
    return result;
  };
  return row;
}

/**
 * The builder for a rule's `conditions` (`tree`: as the API answered it, or null).
 * `element` goes in the form; `read()` answers the tree to send (null for none) or throws
 * `{ field, message }` when the JSON box holds no valid JSON.
 */
export function conditionBuilder(tree) {
  const shown = rowsOf(tree);
  let bare = Boolean(shown && shown.bare);
  let json = !shown;
  const join = h('select.join', { 'aria-label': 'Combine the conditions with' },
    h('option', { value: 'all' }, 'all'), h('option', { value: 'any' }, 'any'));
  join.value = shown ? shown.join : 'all';
  const rows = h('div.cond-rows');
  const empty = h('p.muted.cond-empty', {}, 'No conditions: every event that passes the filters above matches.');
  const remove = (row) => { row.remove(); bare = false; refresh(); };
  const add = (leaf) => rows.append(conditionRow(leaf, remove));
  (shown ? shown.leaves : []).forEach(add);
  const addButton = h('button', { type: 'button', on: { click: () => {
    add(null); bare = false; refresh(); rows.lastChild.querySelector('input').focus();
  } } }, '+ Add condition');
  const builder = h('div.cond-builder', {},
    h('div.cond-join', {}, 'Send when ', join, ' of these hold:'), rows, empty, h('div.actions', {}, addButton));

  const box = h('textarea.cond-json', { rows: 8, spellcheck: 'false', 'aria-label': 'Conditions as JSON',
    dataset: { path: 'conditions', label: 'Conditions (JSON)' } });
  const note = h('p.hint.cond-note', {});
  const advanced = h('div.cond-advanced', {}, note, box, h('p.error', { hidden: true, role: 'alert' }));
  const toggle = h('button.link.cond-toggle', { type: 'button' });
  const problem = h('p.error', { hidden: true, role: 'alert' });
  if (!shown) {
    box.value = JSON.stringify(tree, null, 2);
    note.textContent = 'These conditions nest deeper than the builder shows (groups within groups, or "not"), '
      + 'so they are kept exactly as written: edit them here.';
  }

  function refresh() {
    builder.hidden = json;
    advanced.hidden = !json;
    empty.hidden = rows.children.length > 0;
    toggle.textContent = json ? 'Back to the builder' : 'Advanced (JSON)';
  }

  toggle.addEventListener('click', () => {
    problem.hidden = true;
    if (!json) {
      box.value = JSON.stringify(readRows(), null, 2);
      if (box.value === 'null') box.value = '';
      note.textContent = 'The whole tree: {"all":[…]}, {"any":[…]}, {"not":…} or a leaf {"path","op","value"}, nested up to 8 levels.';
      json = true;
    } else {
      let parsed;
      try { parsed = box.value.trim() ? JSON.parse(box.value) : null; } catch (e) {
        problem.textContent = `This is not valid JSON (${e.message}); fix it or keep editing it here.`; problem.hidden = false; return;
      }
      const back = rowsOf(parsed);
      if (!back) {
        problem.textContent = 'The builder shows one level of rows joined by all or any; these conditions nest deeper, so keep editing them as JSON.';
        problem.hidden = false;
        return;
      }
      rows.replaceChildren();
      back.leaves.forEach(add);
      join.value = back.join;
      bare = back.bare;
      json = false;
    }
    refresh();
  });

  function readRows() {
    const list = [...rows.children];
    if (!list.length) return null;
    if (bare && list.length === 1) return list[0].read('conditions', 0);
    return { [join.value]: list.map((row, i) => row.read(`conditions.${join.value}[${i}]`, i)) };
  }

  refresh();
  const element = h('div.conditions', {}, builder, advanced, h('div.actions', {}, toggle), problem);
  return {
    element,
    read() {
      if (!json) return readRows();
      if (!box.value.trim()) return null;
      try { return JSON.parse(box.value); } catch (e) {
        throw { field: 'conditions', message: `is not valid JSON: ${e.message}` };
      }
    },
  };
}

/** "principal ends with @gmail.com": one leaf in words, for the rules list. */
export function describeLeaf(leaf) {
  const value = Array.isArray(leaf.value) ? leaf.value.join(', ') : leaf.op === 'exists' ? '' : String(leaf.value);
  const words = leaf.op === 'exists' ? (leaf.value ? 'is present' : 'is absent') : opWords(leaf.op);
  return `${fieldName(leaf.path)} ${words}${value ? ` ${value}` : ''}${leaf.case_insensitive ? ' (any case)' : ''}`;
}
