// The console shell: sign in with a key (kept in sessionStorage only), hash routes, sign out.
import { api, onUnauthorized, session } from './api.js';
import { clear, errorBox, field, h } from './dom.js';
import { adminView } from './views/admin.js';
import { runDetail } from './views/run_detail.js';
import { playgroundView } from './views/playground.js';
import { runsView } from './views/runs.js';
import { templateDetail, templatesView } from './views/templates.js';
import { workflowDetail } from './views/workflow_detail.js';
import { workflowsView } from './views/workflows.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let cleanup = null;

const ROUTES = [
  [/^#\/workflows\/(.+)$/, workflowDetail],
  [/^#\/workflows$/, workflowsView],
  [/^#\/runs\/(.+)$/, runDetail],
  [/^#\/runs$/, runsView],
  [/^#\/templates\/(.+)$/, templateDetail],
  [/^#\/templates$/, templatesView],
  [/^#\/playground$/, playgroundView],
  [/^#\/admin$/, adminView],
];

const ctx = {
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

function route() {
  if (!session.account) return;
  cleanup?.();
  cleanup = null;
  const hash = location.hash || '#/workflows';
  for (const link of nav.querySelectorAll('a')) {
    if (hash.startsWith(link.getAttribute('href'))) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  for (const [pattern, view] of ROUTES) {
    const match = pattern.exec(hash);
    if (match) {
      const result = view(main, ctx, ...match.slice(1).map(decodeURIComponent));
      if (typeof result === 'function') cleanup = result;
      return;
    }
  }
  clear(main, h('p', {}, 'No such page. ', h('a', { href: '#/workflows' }, 'Go to workflows')));
}

function showSignIn(message) {
  cleanup?.();
  cleanup = null;
  nav.hidden = true;
  who.hidden = true;
  const key = h('input', { type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const errors = h('div', {}, message ? errorBox(new Error(message)) : null);
  const form = h('form', { class: 'card sign-in', 'aria-label': 'Sign in' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an API key of this server. It stays in this browser tab only (session storage) and is sent as ',
      h('code', {}, 'Authorization: Bearer'), '.'),
    field('API key', key),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(errors);
    try {
      await signIn(key.value.trim());
    } catch (error) {
      errors.append(errorBox(error));
    }
  });
  clear(main, form);
  key.focus();
}

async function signIn(key) {
  const answer = await api('/v1/account/me', { key });
  session.key = key;
  session.account = answer.data.account;
  document.getElementById('who-name').textContent =
    `${session.account.name}${session.isAdmin ? ' (admin)' : ''}`;
  document.getElementById('nav-admin').hidden = !session.isAdmin;
  nav.hidden = false;
  who.hidden = false;
  route();
}

function signOut(message) {
  session.key = null;
  session.account = null;
  showSignIn(message);
}

document.getElementById('sign-out').addEventListener('click', () => signOut());
onUnauthorized.addEventListener('unauthorized', () => {
  if (session.account) signOut('The server refused the key (it may have been revoked). Sign in again.');
});
window.addEventListener('hashchange', route);

if (session.key) {
  signIn(session.key).catch((error) => signOut(error.message));
} else {
  showSignIn();
}
