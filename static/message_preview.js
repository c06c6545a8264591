// A readable approximation of the message a Slack or Teams channel sends, drawn from the exact
// body the router builds (POST /api/v1/channel-types/{type}/preview). Everything is text nodes:
// the router already escaped event data for the vendor's format, and here it is only unescaped
// back to text, never parsed as HTML. The only links drawn are https URLs the body itself links.

import { post } from './api.js';
import { h } from './ui.js';

/** Slack's escapes back to the characters they stand for. */
const slackText = (text) => text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

const link = (url, label) => (/^https:\/\//.test(url)
  ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, label)
  : label);

/** Slack mrkdwn as the app shows it: *bold*, `code`, <url|label> links, line breaks. */
function mrkdwn(text) {
  const out = [];
  const pattern = /\*([^*\n]+)\*|`([^`]+)`|<([^|>]+)\|([^>]+)>|<(https:[^|>]+)>|\n/g;
  let at = 0;
  for (const m of text.matchAll(pattern)) {
    out.push(slackText(text.slice(at, m.index)));
    if (m[1]) out.push(h('strong', {}, slackText(m[1])));
    else if (m[2]) out.push(h('code', {}, slackText(m[2])));
    else if (m[3]) out.push(link(slackText(m[3]), slackText(m[4])));
    else if (m[5]) out.push(link(slackText(m[5]), slackText(m[5])));
    else out.push(h('br'));
    at = m.index + m[0].length;
  }
  out.push(slackText(text.slice(at)));
  return out;
}

function slack(body) {
  const blocks = (body.blocks || []).map((block) => {
    if (block.type === 'header') return h('div.msg-title', {}, block.text.text);
    if (block.type === 'section' && block.fields) return h('div.msg-fields', {}, block.fields.map((f) => h('div', {}, mrkdwn(f.text))));
    if (block.type === 'section' && block.text) return h('div', {}, mrkdwn(block.text.text));
    if (block.type === 'context') return h('div.msg-context', {}, block.elements.map((e) => h('span', {}, mrkdwn(e.text || ''))));
    return null;
  });
  return h('div.msg.msg-slack', { dataset: { preview: 'slack' } },
    h('div.msg-from', {}, h('strong', {}, 'SPScan'), ' ', h('span.msg-app', {}, 'APP')),
    blocks,
    h('div.msg-fallback', {}, 'Notification text: ', slackText(body.text || '')));
}

/** Teams Markdown: a backslash before punctuation shows the punctuation itself. */
const teamsText = (text) => String(text || '').replace(/\\([!-/:-@[-`{-~])/g, '$1');

function teams(body) {
  const card = (((body.attachments || [])[0]) || {}).content || {};
  const items = (card.body || []).map((item) => {
    if (item.type === 'TextBlock') return h(`div.msg-title${item.color ? `.c-${item.color.toLowerCase()}` : ''}`, {}, teamsText(item.text));
    if (item.type === 'FactSet') {
      return h('dl.msg-facts', {}, item.facts.flatMap((f) => [h('dt', {}, teamsText(f.title)), h('dd', {}, teamsText(f.value))]));
    }
    return null;
  });
  const actions = (card.actions || []).map((a) => link(a.url, h('span.msg-button', {}, a.title)));
  return h('div.msg.msg-teams', { dataset: { preview: 'teams' } },
    h('div.msg-from', {}, 'Workflows · SPScan Alert Router'), items, actions.length ? h('div.msg-actions', {}, actions) : null);
}

/** The drawing of `body` as `type` shows it, or null for types that have no picture here. */
export function drawMessage(type, body) {
  if (type === 'slack') return slack(body);
  if (type === 'teams') return teams(body);
  return null;
}

/** The types whose message the Add channel form previews. */
export const PREVIEWED = ['slack', 'teams'];

/**
 * Fetches and draws what a channel of `type` would send for the sample event, with the exact
 * JSON under a disclosure.
 */
export async function previewMessage(type, label) {
  const answer = await post(`/channel-types/${encodeURIComponent(type)}/preview`);
  return h('div.msg-preview', { role: 'region', 'aria-label': `Message preview for ${label}` },
    h('p.muted', {}, `The sample event as ${label} will show it (the same message Test sends):`),
    drawMessage(type, answer.body),
    h('details', {}, h('summary', {}, 'The exact body sent'), h('pre', {}, JSON.stringify(answer.body, null, 2))));
}
