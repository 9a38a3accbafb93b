// The console's shell: sign-in, sign-out, and a hash router over the pages.
import { currentSession, signIn, signOut } from './api.js';
import { el, errorText } from './ui.js';
import { keysPage } from './keys.js';
import { keyPage } from './key.js';
import { principalsPage } from './principals.js';
import { auditPage } from './audit.js';
import { dashboardPage } from './dashboard.js';

const page = document.getElementById('page');
const signInSection = document.getElementById('sign-in');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let session = null;
let leave = null;

function signedOutView(message) {
  session = null;
  nav.hidden = true;
  who.hidden = true;
  page.replaceChildren();
  signInSection.hidden = false;
  document.getElementById('sign-in-error').textContent = message || '';
  document.getElementById('access-key-id').focus();
}

function signedInView(info) {
  session = info;
  signInSection.hidden = true;
  nav.hidden = false;
  who.hidden = false;
  document.getElementById('who-name').textContent = info.principal;
  document.getElementById('who-name').title = `${info.principal} (${info.accessKeyId}, ${info.region})`;
  if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/keys';
  else route();
}

async function route() {
  if (!session) return;
  if (leave) { leave(); leave = null; }
  const hash = decodeURIComponent(location.hash.replace(/^#/, ''));
  for (const a of nav.querySelectorAll('a')) {
    const here = hash === a.getAttribute('href').slice(1) || hash.startsWith(`${a.getAttribute('href').slice(1)}/`);
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  try {
    if (hash.startsWith('/keys/')) leave = await keyPage(page, session, hash.slice('/keys/'.length));
    else if (hash === '/principals') leave = await principalsPage(page, session);
    else if (hash === '/audit') leave = await auditPage(page, session);
    else if (hash === '/dashboard') leave = await dashboardPage(page, session);
    else leave = await keysPage(page, session);
  } catch (err) {
    if (err && err.status === 401) signedOutView('Your session ended; sign in again.');
    else page.replaceChildren(el('p', { class: 'error', role: 'alert' }, errorText(err)));
  }
}

document.getElementById('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = document.getElementById('sign-in-error');
  error.textContent = '';
  const id = document.getElementById('access-key-id').value.trim();
  const secret = document.getElementById('secret-access-key').value;
  const token = document.getElementById('session-token').value.trim();
  if (!id || !secret) { error.textContent = 'Enter an access key ID and its secret access key.'; return; }
  try {
    const info = await signIn(id, secret, token);
    document.getElementById('secret-access-key').value = '';
    document.getElementById('session-token').value = '';
    signedInView(info);
  } catch (err) {
    error.textContent = errorText(err);
  }
});

document.getElementById('sign-out').addEventListener('click', async () => {
  if (leave) { leave(); leave = null; }
  try { await signOut(); } catch { /* the session is gone either way */ }
  history.replaceState(null, '', '/console/');
  signedOutView('Signed out.');
});

window.addEventListener('hashchange', route);
// A call that finds the session gone (expired, or its key deactivated) brings back the sign-in form.
window.addEventListener('unhandledrejection', (event) => {
  if (event.reason && event.reason.status === 401) signedOutView('Your session ended; sign in again.');
});

currentSession().then((info) => (info ? signedInView(info) : signedOutView('')), (err) => signedOutView(errorText(err)));
