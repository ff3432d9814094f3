// The console's entry point: sign-in, the screens of each role, log out.
//
// The role is chosen on the sign-in form rather than discovered by trying routes: every call is an
// audited access, so probing a token against the other role's routes would leave a refused request
// in the audit log at each sign-in. One call of the chosen role checks the token:
// GET /v1/audit/tree-head for an auditor, GET /v1/datasets for a publisher.

import * as api from './api.js';
import { h, clear, message } from './dom.js';
import { mountLog, mountVerify, forgetAuditState } from './audit.js';
import { mountDatasets, mountSources, forgetPublisherState } from './publisher.js';

const ROLES = {
  auditor: {
    probe: '/v1/audit/tree-head',
    screens: [['log', 'Audit log', mountLog], ['verify', 'Verify the log', mountVerify]],
  },
  publisher: {
    probe: '/v1/datasets',
    screens: [['datasets', 'Datasets', mountDatasets], ['sources', 'Sources', mountSources]],
  },
};

const el = (id) => document.getElementById(id);

let session = null; // {role}
let pinnedKey = ''; // an auditor's trusted gateway key (public, not a secret), kept for the session

const ctx = {
  pinnedKey: () => pinnedKey,
  setPinnedKey: (value) => {
    pinnedKey = value;
  },
};

function showLogin(note) {
  el('app-screen').hidden = true;
  clear(el('app-screen'));
  el('nav').hidden = true;
  clear(el('nav'));
  el('logout').hidden = true;
  el('who').textContent = '';
  el('login-screen').hidden = false;
  clear(el('login-status'));
  if (note) el('login-status').append(note);
  el('token').value = '';
  el('token').focus();
}

function logout(note) {
  api.forgetToken();
  session = null;
  pinnedKey = '';
  forgetAuditState();
  forgetPublisherState();
  showLogin(note);
}

function showScreen(id) {
  const role = ROLES[session.role];
  const screen = role.screens.find(([sid]) => sid === id) || role.screens[0];
  for (const button of el('nav').querySelectorAll('button')) {
    if (button.dataset.screen === screen[0]) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  const root = el('app-screen');
  clear(root);
  root.dataset.screen = screen[0];
  screen[2](root, ctx);
}

function startSession(role) {
  session = { role };
  el('login-screen').hidden = true;
  el('app-screen').hidden = false;
  el('logout').hidden = false;
  el('who').textContent = `signed in as ${role}`;
  const nav = clear(el('nav'));
  for (const [id, label] of ROLES[role].screens) {
    const button = h('button', { type: 'button', class: 'tab', dataset: { screen: id }, id: `nav-${id}` }, label);
    button.addEventListener('click', () => showScreen(id));
    nav.append(button);
  }
  nav.hidden = false;
  showScreen(ROLES[role].screens[0][0]);
}

async function signIn(ev) {
  ev.preventDefault();
  const form = el('login-form');
  const status = clear(el('login-status'));
  const role = form.querySelector('input[name="role"]:checked').value;
  const input = el('token');
  const submit = el('login-submit');
  try {
    api.setToken(input.value);
  } catch (err) {
    status.append(message('error', err.message));
    return;
  }
  // The token leaves the DOM at once; from here on it exists only inside api.js.
  input.value = '';
  submit.disabled = true;
  status.append(message('info', 'Checking the token…'));
  try {
    await api.request('GET', ROLES[role].probe);
    startSession(role);
  } catch (err) {
    api.forgetToken();
    clear(status);
    if (err instanceof api.ApiError && err.status === 401) {
      status.append(message('error', 'The gateway did not accept this token (unknown, disabled or mistyped).'));
    } else if (err instanceof api.ApiError && err.status === 403) {
      status.append(message('error', `This token may not use the ${role} screens: its role is not ${role}. Pick the other role, or use a ${role} token.`));
    } else {
      status.append(message('error', err instanceof api.ApiError ? err.describe() : String(err && err.message ? err.message : err)));
    }
    input.focus();
  } finally {
    submit.disabled = false;
  }
}

api.setUnauthenticatedHandler(() => {
  if (!session) return;
  logout(message('error', 'The gateway no longer accepts the token (disabled, or the principal was removed). Sign in again.'));
});

// A console left alone signs itself out: the token should not outlive the person's attention.
const IDLE_LIMIT_MS = 30 * 60 * 1000;
let lastActivity = Date.now();
for (const type of ['pointerdown', 'keydown', 'wheel']) {
  window.addEventListener(type, () => {
    lastActivity = Date.now();
  }, { passive: true, capture: true });
}
setInterval(() => {
  if (session && Date.now() - lastActivity > IDLE_LIMIT_MS) {
    logout(message('info', 'Signed out after 30 minutes without activity: the token was forgotten.'));
  }
}, 30 * 1000);

el('login-form').addEventListener('submit', signIn);
el('logout').addEventListener('click', () => logout(message('info', 'Logged out: the token was forgotten.')));
// Memory only: nothing to clear on unload, but drop the token explicitly when the page goes away.
window.addEventListener('pagehide', () => api.forgetToken());
window.addEventListener('pageshow', (ev) => {
  if (ev.persisted && session) logout(message('info', 'Signed out: the page was restored from the history.'));
});
showLogin();
