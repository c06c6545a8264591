// The admin page: sign-in with the admin token, navigation by URL hash, one view at a time.

import { get, setToken, token } from './api.js';
import * as channels from './channels.js';
import * as firstrun from './firstrun.js';
import * as logs from './logs.js';
import * as overview from './overview.js';
import * as rules from './rules.js';
import * as silences from './silences.js';
import * as tenant from './tenant.js';
import * as tenants from './tenants.js';
import { h, clear } from './ui.js';

const signIn = document.getElementById('sign-in');
const view = document.getElementById('view');
const nav = document.getElementById('nav');
let cleanup = null;
let generation = 0;

function showSignIn(message) {
  if (cleanup) { cleanup(); cleanup = null; }
  nav.hidden = true;
  view.hidden = true;
  signIn.hidden = false;
  const error = document.getElementById('sign-in-error');
  error.textContent = message || '';
  error.hidden = !message;
  document.getElementById('token').focus();
}

async function route() {
  const mine = ++generation;
  if (!token()) { showSignIn(); return; }
  if (cleanup) { cleanup(); cleanup = null; }
  signIn.hidden = true;
  nav.hidden = false;
  view.hidden = false;
  const [path, search] = location.hash.replace(/^#\/?/, '').split('?');
  const [name, id] = path.split('/');
  const params = new URLSearchParams(search || '');
  const current = name || 'overview';
  nav.querySelectorAll('a').forEach((a) => {
    if (a.dataset.view === current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  // Each view renders into its own container, swapped in only if no newer navigation started
  // meanwhile; a superseded view's refresh timer is stopped at once.
  const container = h('div');
  let done = null;
  try {
    if (current === 'channels') done = await channels.render(container);
    else if (current === 'rules') done = await rules.render(container);
    else if (current === 'tenants' && id) done = await tenant.render(container, decodeURIComponent(id));
    else if (current === 'tenants') done = await tenants.render(container);
    else if (current === 'silences') done = await silences.render(container, params);
    else if (current === 'logs' && id) done = await logs.renderDelivery(container, id);
    else if (current === 'logs') done = await logs.renderList(container, params);
    else if (current === 'start') done = await firstrun.render(container);
    else {
      // The first-run checklist sits above the Overview, in a slot of its own (firstrun.js).
      const start = h('div', { dataset: { firstrunSlot: '' } });
      const rest = h('div');
      container.append(start, rest);
      done = await overview.render(rest);
      await firstrun.onOverview(start);
    }
  } catch (error) {
    if (error.status === 401) return;
    clear(container).append(h('div.card', {}, h('p.error', { role: 'alert' }, error.message)));
  }
  if (mine !== generation) { if (done) done(); return; }
  cleanup = done || null;
  view.replaceChildren(container);
}

document.getElementById('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const field = document.getElementById('token');
  setToken(field.value.trim());
  try {
    await get('/channels');
    field.value = '';
    route();
  } catch (error) {
    if (error.status !== 401) showSignIn(error.message);
  }
});

document.getElementById('sign-out').addEventListener('click', () => {
  setToken(null);
  showSignIn('Signed out.');
});

window.addEventListener('signed-out', (event) => showSignIn(event.detail));
window.addEventListener('hashchange', route);
route();
