// Shared by every screen: the API client (cookie session + CSRF), DOM building, labels and
// times. Nothing here keeps case data beyond the page's life: a sign-out reloads the page.
'use strict';

// The signed-in user (GET /v1/me), the CSRF token and reference lists every screen uses.
export const session = {
  me: null,
  csrf: null,
  agencies: new Map(), // id -> {id, name, kind}
  hubs: new Map(), // id -> {id, name, local_authority, time_zone}
};

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `the server answered ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
  // problem+json field errors: [{field, message}]
  get errors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

// A session that has ended: remember why across the reload, which wipes every case datum
// the page holds, and show the sign-in form again.
export function sessionEnded(why) {
  try {
    sessionStorage.setItem('raise-signed-out', why);
  } catch (e) {
    // storage may be disabled; the sign-in form shows without the reason
  }
  location.reload();
}

// One API call. Non-GET requests carry the CSRF token; a JSON body is sent as JSON. Answers
// the parsed JSON (null for 204); throws ApiError for any other status. A 401 ends the
// session unless opts.quiet401 (the boot-time GET /v1/me).
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (session.csrf)
      headers['X-CSRF-Token'] = session.csrf;
  }
  Object.assign(headers, opts.headers || {});
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined)
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const reply = await fetch(path, init);
  let data = null;
  const type = reply.headers.get('Content-Type') || '';
  if (reply.status !== 204 && type.includes('json'))
    data = await reply.json().catch(() => null);
  if (reply.status === 401 && !opts.quiet401)
    sessionEnded('expired');
  // the cookie is another session's now (signed in again in another tab): start again as it
  if (reply.status === 403 && data && data.detail === 'missing or wrong X-CSRF-Token')
    sessionEnded('expired');
  if (!reply.ok)
    throw new ApiError(reply.status, data);
  return data;
}

// Every item of a list route, following `next` (at most `pages` pages of 200).
export async function listAll(path, pages = 10) {
  const items = [];
  let before = null;
  for (let i = 0; i < pages; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET', `${path}${sep}limit=200` +
      (before ? `&before=${encodeURIComponent(before)}` : ''));
    items.push(...page.items);
    if (!page.next)
      break;
    before = page.next;
  }
  return items;
}

// Young people by id, looked up once per page life (each read is audited by the server).
const subjects = new Map(); // id -> Promise of the young person, or null if hidden
export function subject(id) {
  if (!subjects.has(id))
    subjects.set(id, api('GET', `/v1/subjects/${encodeURIComponent(id)}`).catch(() => null));
  return subjects.get(id);
}
export function rememberSubject(s) {
  subjects.set(s.id, Promise.resolve(s));
}

// el('li', {class: 'event', 'data-id': id}, 'text', child...): attributes are set with
// setAttribute (never style, never HTML); children are nodes or text. A false/null
// attribute is left out; `true` sets a boolean attribute.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false)
      continue;
    if (k === 'value' || k === 'checked')
      node[k] = v;
    else
      node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false)
      continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Replace a node's children.
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

// <select> options from [value, label] pairs; keeps the current value when it still exists.
export function options(select, pairs, placeholder) {
  const old = select.value;
  fill(select, placeholder !== undefined ? el('option', { value: '' }, placeholder) : null,
    pairs.map(([v, l]) => el('option', { value: v }, l)));
  if (pairs.some(([v]) => v === old))
    select.value = old;
}

// ---- labels

export const CATEGORIES = [
  ['missing_from_home', 'Missing from home'],
  ['returned_from_missing', 'Returned from missing'],
  ['arrest', 'Arrest'],
  ['charge', 'Charge'],
  ['offence_at_hub', 'Offence at the hub'],
  ['cse_concern', 'CSE concern'],
  ['cce_county_lines', 'CCE / county lines'],
  ['risky_associate', 'Risky associate'],
  ['self_harm', 'Self-harm'],
  ['ae_attendance', 'A&E attendance'],
  ['hospital_admission', 'Hospital admission'],
  ['substance_misuse', 'Substance misuse'],
  ['school_exclusion', 'School exclusion'],
  ['placement_incident', 'Placement incident'],
  ['domestic_abuse', 'Domestic abuse'],
  ['positive_progress', 'Positive progress'],
  ['other', 'Other'],
];
export const GRAVITY_CATEGORIES = new Set(['arrest', 'charge', 'offence_at_hub']);
export const RISK_LEVELS = [['low', 'Low'], ['medium', 'Medium'], ['high', 'High'],
  ['critical', 'Critical']];
const STATUSES = { in_care: 'In care', edge_of_care: 'Edge of care',
  edging_to_care: 'Edging to care', care_leaver: 'Care leaver' };
const ROLES = { admin: 'Administrator', hub_manager: 'Hub manager',
  police_liaison: 'Police liaison officer', practitioner: 'Practitioner' };
const EVENTS = {
  'intelligence.posted': 'New intelligence',
  'intelligence.retracted': 'Intelligence retracted',
  'subject.updated': 'Young person updated',
  'action.created': 'New action',
  'action.updated': 'Action updated',
  'action.completed': 'Action completed',
  'action.reopened': 'Action reopened',
  'action.cancelled': 'Action cancelled',
  'action.overdue': 'Action overdue',
  'meeting.scheduled': 'Meeting scheduled',
  'meeting.updated': 'Meeting updated',
  'meeting.started': 'Meeting started',
  'meeting.closed': 'Meeting closed',
};
const categoryNames = new Map(CATEGORIES);

export const label = {
  category: (c) => categoryNames.get(c) || c,
  status: (s) => STATUSES[s] || s,
  role: (r) => ROLES[r] || r,
  event: (t) => EVENTS[t] || t,
  risk: (r) => (RISK_LEVELS.find(([v]) => v === r) || [r, r])[1],
  agency: (id) => (session.agencies.get(id) || { name: 'an agency' }).name,
  person: (s) => s ? `${s.given_name} ${s.family_name} (${s.reference})` : 'a young person',
};

// ---- times: the API speaks UTC RFC 3339; people see and type their local time

const dateTime = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' });

export function when(iso) {
  if (!iso)
    return '-';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

// A YYYY-MM-DD date as "5 Dec 2026" (a calendar date, so read as UTC to keep the day).
export function day(ymd) {
  if (!ymd)
    return '-';
  const d = new Date(`${ymd}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? ymd : dateOnly.format(d);
}

// The value of a datetime-local input (local time) as RFC 3339 UTC to the second.
export function toUtc(local) {
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? null : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// A Date as the value of a datetime-local input (local time, to the minute).
export function toLocalInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:` +
    p(d.getMinutes());
}

// Today's local date as YYYY-MM-DD (for <input type=date min>).
export function today() {
  return toLocalInput(new Date()).slice(0, 10);
}

// ---- field errors beside inputs: .field-error[data-field=<API field name>]

// The element that shows a field's message: the innermost .field-error of that name.
function errorSlot(form, field) {
  let slot = null;
  for (const e of form.querySelectorAll('.field-error')) {
    if (e.dataset.field === field) {
      slot = e;
      break;
    }
  }
  while (slot && slot.querySelector('.field-error'))
    slot = slot.querySelector('.field-error');
  return slot;
}

export function clearErrors(form) {
  for (const e of form.querySelectorAll('.field-error'))
    if (!e.querySelector('.field-error'))
      e.textContent = '';
  for (const i of form.querySelectorAll('[aria-invalid]'))
    i.removeAttribute('aria-invalid');
}

// Show [{field, message}] beside their fields; answers the messages no field took, as text.
export function showErrors(form, errors) {
  clearErrors(form);
  const rest = [];
  for (const { field, message } of errors) {
    const slot = errorSlot(form, field);
    if (!slot) {
      rest.push(`${field}: ${message}`);
      continue;
    }
    slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
    const p = slot.closest('p, fieldset');
    const input = p && p.querySelector('input, select, textarea');
    if (input)
      input.setAttribute('aria-invalid', 'true');
  }
  return rest.join('. ');
}

// What to tell people about a failed call.
export function explain(e) {
  if (e instanceof ApiError) {
    if (e.status === 503)
      return 'The database is busy or unavailable; try again in a moment.';
    return e.message;
  }
  return 'The server could not be reached; check the connection and try again.';
}

// Run fn at most once per `ms`, after the last call (for refreshes driven by events).
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
