// The delivery page's "what was sent": for each attempt, the request exactly as it went out
// (method, URL, headers, body; credentials masked by the router before it kept them) and the
// answer's status and headers, each with a Copy button.

import { h } from './ui.js';

/** Puts `text` on the clipboard (navigator.clipboard, or a selected textarea where it is missing). */
async function copy(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = h('textarea.copy-buffer', { readonly: true }, text);
  document.body.append(area);
  area.select();
  const done = document.execCommand('copy');
  area.remove();
  if (!done) throw new Error('the browser refused to copy');
}

/** A Copy button for the text `get()` answers; it says "Copied" for a moment. */
export function copyButton(what, get) {
  const button = h('button.copy', { type: 'button', 'aria-label': `Copy ${what}`, dataset: { copy: what }, on: { click: async () => {
    try {
      await copy(get());
      button.textContent = 'Copied';
    } catch (error) {
      button.textContent = 'Copy failed';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  } } }, 'Copy');
  return button;
}

const headerLines = (headers) => headers.map((x) => `${x.name}: ${x.value}`).join('\n');

/** A titled block of text with its Copy button. */
function block(title, what, text, data) {
  return h('div.sent-block', { dataset: data },
    h('div.sent-head', {}, h('h4', {}, title), copyButton(what, () => text)),
    h('pre.sent-text', {}, text));
}

/** What attempt `a` sent and what came back, or why nothing was sent. */
export function sentRequest(a) {
  const r = a.request;
  if (!r) {
    return h('p.muted', {}, a.error_kind ? 'Nothing was sent: the attempt stopped before the request went out.'
      : 'Not kept: the attempt was made before the router kept what it sent.');
  }
  const requestLine = `${r.method} ${r.url}`;
  const size = r.body_truncated ? ` (truncated: the first 65,536 of ${r.body_bytes} bytes)` : ` (${r.body_bytes} bytes)`;
  const answer = a.status_code ? `HTTP ${a.status_code}` : 'No answer';
  return h('div.sent', { dataset: { sentAttempt: a.number } },
    block('Request', 'the request line', requestLine, { sent: 'url' }),
    block('Request headers', 'the request headers', headerLines(r.headers), { sent: 'headers' }),
    block(`Body${size}`, 'the body', r.body, { sent: 'body' }),
    r.response_headers
      ? block(`Answer: ${answer}`, 'the answer', `${answer}\n${headerLines(r.response_headers)}`, { sent: 'answer' })
      : h('p.muted', { dataset: { sent: 'answer' } }, `${answer}${a.error ? `: ${a.error}` : ''}`),
    h('p.muted.small', {}, 'Credentials are masked (••••): the router never keeps them.'));
}
