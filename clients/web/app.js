// The RAISE page. Signs in with a session cookie: the server sets an HttpOnly cookie and
// tells the page the CSRF token, which every state-changing request sends as X-CSRF-Token.
// The page never sees or stores the session token. The URL's hash names the screen only
// (#feed, #post, ...), never a young person or any other case record.
'use strict';

import { api, listAll, session, $, label, explain, ApiError, rememberSubject } from './lib.js';
import { startFeed, stopFeed, onEvent } from './feed.js';
import { initPost, loadSubjects } from './post.js';
import { initSubjects, refreshSubjects } from './subjects.js';
import { initMeetings, refreshMeetings, concernsMeeting, reloadSoon } from './meetings.js';
import { initActions, refreshActions, refreshSoon } from './actions.js';

// The screens each role may use (the API refuses the rest anyway).
const VIEWS = {
  admin: ['feed'],
  hub_manager: ['feed', 'subjects', 'meetings', 'actions'],
  police_liaison: ['feed', 'post', 'actions'],
  practitioner: ['feed', 'post', 'actions'],
};
// What to load when a screen is shown.
const REFRESH = {
  feed: () => {},
  post: () => loadSubjects(),
  subjects: () => refreshSubjects(),
  meetings: () => refreshMeetings(),
  actions: () => refreshActions(),
};

let allowed = [];

function showView(name) {
  if (!allowed.includes(name))
    name = 'feed';
  for (const b of document.querySelectorAll('nav#views button')) {
    if (b.dataset.view === name)
      b.setAttribute('aria-current', 'page');
    else
      b.removeAttribute('aria-current');
  }
  for (const s of document.querySelectorAll('section.view'))
    s.hidden = s.id !== `view-${name}`;
  if (location.hash !== `#${name}`)
    history.replaceState(null, '', `#${name}`);
  Promise.resolve(REFRESH[name]()).catch(() => {});
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const status = $('#status');
  const button = form.querySelector('button[type=submit]');
  status.textContent = 'Signing in...';
  button.disabled = true;
  try {
    const s = await api('POST', '/v1/sessions', { username: form.username.value,
      password: form.password.value, cookie: true }, { quiet401: true });
    form.password.value = '';
    await start(s.user, s.csrf_token);
  } catch (e) {
    form.password.value = '';
    status.textContent = e instanceof ApiError && e.status === 401
      ? 'Sign-in failed. Check the username and password.'
      : e instanceof ApiError && e.status === 429
        ? 'Too many failed sign-ins. Wait a few minutes and try again.'
        : `Sign-in failed: ${explain(e)}`;
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  const button = $('#sign-out'), notice = $('#app-notice');
  button.disabled = true;
  stopFeed();
  try {
    await api('DELETE', '/v1/sessions/current', undefined, { quiet401: true });
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      // not signed out (the server or the network failed): say so and stay signed in. A
      // reload would claim "signed out" while the cookie still works for the next person
      // at this computer.
      notice.textContent = `Sign-out failed (${explain(e)}): you are still signed in. Try again.`;
      notice.hidden = false;
      button.disabled = false;
      startFeed();
      return;
    }
    // 401: the session had already ended
  }
  try {
    sessionStorage.setItem('raise-signed-out', 'signed-out');
  } catch (e) {
    // storage may be disabled
  }
  // a reload drops every bit of case data the page holds
  location.reload();
}

// Signed in (as `me`, with this CSRF token): load the reference lists, build the screens.
async function start(me, csrf) {
  session.me = me;
  session.csrf = csrf;
  const [agencies, hubs] = await Promise.all([listAll('/v1/agencies'), listAll('/v1/hubs')]);
  for (const a of agencies)
    session.agencies.set(a.id, a);
  for (const h of hubs)
    session.hubs.set(h.id, h);
  $('#whoami').textContent = `${me.display_name} (${label.role(me.role)}, ${me.agency.name})`;
  $('#sign-out').hidden = false;
  $('#signed-out').hidden = true;
  $('#app').hidden = false;
  allowed = VIEWS[me.role] || ['feed'];
  for (const b of document.querySelectorAll('nav#views button'))
    b.hidden = !allowed.includes(b.dataset.view);
  if (me.role === 'hub_manager') {
    // a manager's list is every action in their hubs, not one agency's
    $('nav#views [data-view="actions"]').textContent = 'Actions';
    $('#actions-title').textContent = 'Actions in your hubs';
  }
  if (allowed.includes('post'))
    await initPost().catch(() => {});
  if (allowed.includes('subjects'))
    initSubjects();
  if (allowed.includes('meetings'))
    initMeetings();
  if (allowed.includes('actions'))
    initActions();
  onEvent((type, data) => {
    if (type === 'subject.updated')
      rememberSubject(data);
    if (type.startsWith('action.') && allowed.includes('actions'))
      refreshSoon();
    if (allowed.includes('meetings') && concernsMeeting(type, data))
      reloadSoon();
  });
  startFeed();
  showView(location.hash.slice(1));
}

function largeType(on) {
  document.body.classList.toggle('large', on);
  $('#large-type').setAttribute('aria-pressed', String(on));
  try {
    localStorage.setItem('raise-large-type', on ? '1' : '0');
  } catch (e) {
    // a preference only
  }
}

async function boot() {
  $('#sign-in').addEventListener('submit', signIn);
  $('#sign-out').addEventListener('click', signOut);
  $('#large-type').addEventListener('click',
    () => largeType(!document.body.classList.contains('large')));
  for (const b of document.querySelectorAll('nav#views button'))
    b.addEventListener('click', () => showView(b.dataset.view));
  window.addEventListener('hashchange', () => session.me && showView(location.hash.slice(1)));
  try {
    largeType(localStorage.getItem('raise-large-type') === '1');
  } catch (e) {
    // no stored preference
  }
  let why = null;
  try {
    why = sessionStorage.getItem('raise-signed-out');
    sessionStorage.removeItem('raise-signed-out');
  } catch (e) {
    // storage may be disabled
  }
  try {
    const me = await api('GET', '/v1/me', undefined, { quiet401: true });
    await start(me, me.csrf_token || null);
  } catch (e) {
    $('#signed-out').hidden = false;
    $('#status').textContent = why === 'expired' ? 'Your session has ended. Please sign in again.'
      : why === 'signed-out' ? 'You have signed out.'
        : e instanceof ApiError && e.status === 401 ? '' : `The server is unavailable: ${explain(e)}`;
    $('#username').focus();
  }
}

boot();
