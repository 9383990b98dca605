// The live feed: GET /v1/stream as Server-Sent Events, read with fetch() so the page
// controls the resume. The cookie goes with the request; after any drop the page reconnects
// with Last-Event-ID set to the last id it saw (the server's hello `id: N` included), so the
// server replays what was missed. Each event is shown once (a Set of event ids) at the top
// of ol#feed; other screens subscribe with onEvent() to refresh themselves.
//
// Why not EventSource: once the page has to close one (the browser went offline, or the
// connection went silent), a new EventSource cannot be told where to resume, and it hides
// the status of a refused re-open (401 when the session has ended).
'use strict';

import { el, $, label, when, day, subject, sessionEnded, api, session, ApiError } from './lib.js';

const SHOWN = /^(intelligence|action)\./; // the event types listed in the feed
const RETRY_MS = 2000; // the server's `retry: 2000`
const SILENCE_MS = 45000; // three missed heartbeats (15 s each): the connection is dead

const seen = new Set(); // event ids already handled
const listeners = new Set();
let ctrl = null; // AbortController of the current connection; null when stopped
let lastId = null; // the last event id seen, sent as Last-Event-ID
let queue = Promise.resolve(); // events are rendered in order, one after the other
let running = false;

export function onEvent(fn) {
  listeners.add(fn);
}

function status(text) {
  $('#feed-status').textContent = text;
}

export function startFeed() {
  if (running)
    return;
  running = true;
  window.addEventListener('offline', drop);
  window.addEventListener('online', drop);
  loop();
}

export function stopFeed() {
  running = false;
  window.removeEventListener('offline', drop);
  window.removeEventListener('online', drop);
  if (ctrl)
    ctrl.abort();
}

// Going offline: end the connection now (it may linger unnoticed). Back online: reconnect
// at once rather than after the silence timeout.
function drop() {
  if (ctrl)
    ctrl.abort();
  wake();
}

let wake = () => {};
function pause(ms) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(t);
      resolve();
    };
  });
}

// Before a reconnect: is the cookie still this page's user's? Another tab may have signed
// out and signed in as someone else meanwhile; the stream would then be theirs while the
// page still showed this user's data (found in review). A reload starts again as whoever
// the cookie is now. 1: carry on.
async function sameUser() {
  try {
    const me = await api('GET', '/v1/me'); // a 401 ends the page's session (reload)
    if (me && session.me && me.id === session.me.id)
      return 1;
    running = false;
    sessionEnded('expired');
    return 0;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401)
      return 0; // api() has ended the page's session
    return running ? 1 : 0; // the network or the server: the stream's own request will say
  }
}

async function loop() {
  let first = true;
  while (running) {
    if (!navigator.onLine) {
      // no request while offline: each would only fail; wait for the `online` event
      status('reconnecting (offline)');
      await pause(60000);
      continue;
    }
    if (!first && !(await sameUser()))
      return;
    first = false;
    ctrl = new AbortController();
    try {
      const headers = { Accept: 'text/event-stream' };
      if (lastId)
        headers['Last-Event-ID'] = lastId;
      const reply = await fetch('/v1/stream', { headers, signal: ctrl.signal,
        credentials: 'same-origin', cache: 'no-store' });
      if (reply.status === 401) {
        // the session has ended (sign-out elsewhere, expiry, deactivation)
        running = false;
        sessionEnded('expired');
        return;
      }
      if (reply.ok) {
        status('live');
        await read(reply.body, ctrl);
      }
    } catch (e) {
      // aborted, or the network failed: reconnect below
    }
    if (!running)
      return;
    status('reconnecting');
    await pause(RETRY_MS);
  }
}

// The text/event-stream format: fields until a blank line; an `id` alone (the server's
// hello) moves the position without an event. Silence longer than SILENCE_MS aborts.
async function read(body, ctrl) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let timer = setTimeout(() => ctrl.abort(), SILENCE_MS);
  let buf = '', type = '', data = [], id = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done)
        return;
      clearTimeout(timer);
      timer = setTimeout(() => ctrl.abort(), SILENCE_MS);
      buf += value;
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (id !== null)
            lastId = id;
          if (data.length)
            receive(type || 'message', lastId, data.join('\n'));
          type = '';
          data = [];
          id = null;
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event')
            type = val;
          else if (field === 'data')
            data.push(val);
          else if (field === 'id' && /^\d+$/.test(val))
            id = val;
        }
      }
    }
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
}

function receive(type, id, text) {
  const key = id || `${type}:${text}`;
  if (seen.has(key))
    return;
  seen.add(key);
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return;
  }
  for (const fn of listeners) {
    try {
      fn(type, data);
    } catch (e) {
      // a screen's refresh must not stop the feed
    }
  }
  if (SHOWN.test(type)) // one that fails to draw must not stop the ones after it (review)
    queue = queue.then(() => show(type, id, data)).catch(() => {});
}

// One li.event, built once the young person's reference is known (so it appears whole).
async function show(type, id, d) {
  let ref = d.subject_reference;
  if (!ref && d.subject_id) {
    const s = await subject(d.subject_id);
    ref = s ? s.reference : 'young person not visible';
  }
  const li = el('li', { class: `event ${type.replace('.', '-')}`, 'data-event-id': id,
    'data-type': type });
  const at = type.startsWith('intelligence.')
    ? (d.retracted && type === 'intelligence.retracted' ? d.retracted.at : d.created_at)
    : d.updated_at || d.created_at;
  li.append(el('div', { class: 'event-head' },
    el('time', { datetime: at }, when(at)), ' ',
    el('strong', { class: 'event-type' }, label.event(type)), ' ',
    el('span', { class: 'ref' }, ref || '')));
  li.append(type.startsWith('intelligence.') ? intelBody(d, type) : actionBody(d));
  $('#feed').prepend(li);
  $('#feed-empty').hidden = true;
}

function intelBody(d, type) {
  const g = d.grading;
  return el('div', { class: 'event-body' },
    el('p', { class: 'summary' }, d.summary),
    el('p', { class: 'meta' },
      el('span', { class: `risk ${d.risk_level}` }, label.risk(d.risk_level)), ' · ',
      label.category(d.category),
      d.gravity ? ` · gravity ${d.gravity}` : '',
      g ? [' · grading ', el('span', { class: 'grading' }, g.text)] : ' · ungraded',
      d.restricted_to ? ` · restricted to ${d.restricted_to.map(label.agency).join(', ')}` : ''),
    g && g.conditions ? el('p', { class: 'cond' }, `Handling conditions: ${g.conditions}`) : null,
    type === 'intelligence.retracted' && d.retracted
      ? el('p', { class: 'retracted' }, `Retracted: ${d.retracted.reason}`) : null);
}

function actionBody(a) {
  const owner = a.owner_agency ? a.owner_agency.name : '';
  return el('div', { class: 'event-body' },
    el('p', { class: 'summary' }, a.description),
    el('p', { class: 'meta' },
      el('span', { class: `state ${a.state}` }, a.state), ` · ${owner} · due ${day(a.due_date)}`),
    a.completion_note ? el('p', {}, `Done: ${a.completion_note}`) : null,
    a.cannot_complete_reason ? el('p', { class: 'warn' },
      `Cannot complete: ${a.cannot_complete_reason}`) : null,
    a.latest_progress ? el('p', {}, `Progress: ${a.latest_progress.note}`) : null,
    a.cancel_reason ? el('p', {}, `Cancelled: ${a.cancel_reason}`) : null);
}
