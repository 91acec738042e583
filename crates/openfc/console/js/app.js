// The console's shell: sign-in, the header, and a hash router (`#/...`) that hands the main area to a view.
// A view may return a cleanup function (timers of live charts and log follows), run when the route changes.

import { currentSession, signIn, signOut, whenSignedOut } from './api.js';
import { h, clear, field, errorBox, busy, notice } from './ui.js';
import { servicesView, serviceView } from './services.js';
import { functionView, functionForm } from './function.js';
import { activityView } from './activity.js';

const main = document.getElementById('main');
let session = null;
let cleanup = null;

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 's' && parts.length === 2) return () => serviceView(main, parts[1], params);
  if (parts[0] === 's' && parts[2] === 'new' && parts.length === 3) return () => functionForm(main, parts[1], null);
  if (parts[0] === 's' && parts[2] === 'f' && parts[4] === 'edit') return () => functionForm(main, parts[1], parts[3]);
  if (parts[0] === 's' && parts[2] === 'f' && parts.length === 4) return () => functionView(main, parts[1], parts[3], session);
  if (parts[0] === 'activity') return () => activityView(main, session);
  return () => servicesView(main, params);
}

async function render() {
  if (cleanup) { try { cleanup(); } catch { /* nothing to keep */ } cleanup = null; }
  if (!session) return showSignIn();
  clear(main);
  const view = route();
  try {
    cleanup = (await view()) || null;
  } catch (e) {
    main.append(errorBox(e));
  }
  const heading = main.querySelector('h1');
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

function setSession(s) {
  session = s;
  document.getElementById('nav').hidden = !s;
  document.getElementById('who').hidden = !s;
  document.getElementById('who-text').textContent = s ? `${s.accessKeyId} · account ${s.accountId}` : '';
}

function showSignIn(reason) {
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  setSession(null);
  const id = h('input', { id: 'ak-id', name: 'accessKeyId', autocomplete: 'username', required: true, spellcheck: 'false' });
  const secret = h('input', { id: 'ak-secret', name: 'accessKeySecret', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('div', { id: 'sign-in-error' });
  const button = h('button', { type: 'submit', id: 'sign-in' }, 'Sign in');
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title' }, 'Sign in to openfc'),
    reason ? h('p', { class: 'note', role: 'status' }, reason) : null,
    field('AccessKey ID', id),
    field('AccessKey secret', secret, 'Sent once to sign in; the browser keeps only a session cookie it cannot read.'),
    err, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(button, err, async () => {
      const s = await signIn(id.value.trim(), secret.value);
      secret.value = '';
      setSession(s);
      notice('Signed in');
      if (!location.hash || location.hash === '#/signin') location.hash = '#/';
      await render();
    });
  });
  clear(main, form);
  id.focus();
}

whenSignedOut((err) => showSignIn(err.message));

document.getElementById('sign-out').addEventListener('click', async () => {
  // If the call fails the page still forgets its CSRF value; the cookie then lives to its expiry.
  try { await signOut(); } catch { /* shown as signed out regardless */ }
  showSignIn('Signed out.');
});

window.addEventListener('hashchange', () => { render(); });

(async () => {
  try { setSession(await currentSession()); } catch { setSession(null); }
  await render();
})();
