// Share intelligence: form#post-intel -> POST /v1/intelligence. The page checks the fields
// the way the server does (api.md "POST /v1/intelligence") and shows the server's 422
// field errors beside the same inputs. An Idempotency-Key makes a retry after a network
// failure safe: the same body is sent again with the same key.
'use strict';

import { api, listAll, el, $, fill, options, session, label, CATEGORIES, RISK_LEVELS,
  GRAVITY_CATEGORIES, toUtc, toLocalInput, showErrors, clearErrors, explain, ApiError,
  rememberSubject } from './lib.js';

const form = () => $('#post-intel');
let subjects = new Map(); // id -> young person, for the team checkboxes
let unsent = null; // {key, body} of a post that may not have reached the server

export async function initPost() {
  const f = form();
  options(f.category, CATEGORIES, 'Choose a category');
  options(f.risk_level, RISK_LEVELS, 'Choose a risk level');
  options(f.gravity, [1, 2, 3, 4, 5, 6, 7, 8].map((n) => [String(n), String(n)]), 'Not given');
  options(f.grading_source, [['1', '1 - reliable'], ['2', '2 - untested'],
    ['3', '3 - not reliable']], 'Not graded');
  options(f.grading_assessment, [['A', 'A - known directly'],
    ['B', 'B - known indirectly, corroborated'], ['C', 'C - known indirectly'],
    ['D', 'D - not known'], ['E', 'E - suspected to be false']], 'Not graded');
  options(f.handling, [['P', 'P - sharing permitted'],
    ['C', 'C - permitted with conditions']], 'Not graded');
  $('#pi-grading-need').textContent = session.me.role === 'police_liaison'
    ? '(required for police intelligence)' : '(optional)';
  f.occurred_at.value = toLocalInput(new Date());
  f.category.addEventListener('change', sync);
  f.handling.addEventListener('change', sync);
  f.subject_id.addEventListener('change', team);
  f.addEventListener('submit', submit);
  sync();
  await loadSubjects();
}

export async function loadSubjects() {
  const f = form();
  const list = await listAll('/v1/subjects');
  subjects = new Map(list.map((s) => [s.id, s]));
  list.forEach(rememberSubject);
  list.sort((a, b) => a.reference.localeCompare(b.reference));
  options(f.subject_id, list.map((s) => [s.id, label.person(s)]), 'Choose a young person');
  team();
}

// Show gravity only for arrests, charges and offences; conditions only with handling C.
function sync() {
  const f = form();
  $('#pi-gravity-row').hidden = !GRAVITY_CATEGORIES.has(f.category.value);
  $('#pi-conditions-row').hidden = f.handling.value !== 'C';
}

// restricted_to: the agencies on the chosen young person's team (the author's own agency
// is always added by the server, so it is not offered).
function team() {
  const f = form();
  const s = subjects.get(f.subject_id.value);
  const ids = (s ? s.team : []).filter((id) => id !== session.me.agency.id);
  fill($('#pi-restricted'), ids.length ? ids.map((id) => el('label', { class: 'check' },
    el('input', { type: 'checkbox', name: 'restricted_to', value: id }), ' ', label.agency(id)))
    : el('span', { class: 'none' }, s ? 'No other agency is on the team.'
      : 'Choose a young person first.'));
}

// The body, and the field errors the server would give for it.
function read() {
  const f = form();
  const errors = [];
  const need = (field, ok, message) => ok || errors.push({ field, message });
  const body = {};
  need('subject_id', f.subject_id.value, 'is required');
  body.subject_id = f.subject_id.value;
  need('category', f.category.value, 'is required');
  body.category = f.category.value;
  const summary = f.summary.value.trim();
  need('summary', summary.length >= 1, 'is required');
  need('summary', [...summary].length <= 500, 'must be 1 to 500 characters');
  body.summary = summary;
  const detail = f.detail.value.trim();
  need('detail', [...detail].length <= 10000, 'must be 0 to 10000 characters');
  if (detail)
    body.detail = detail;
  const at = toUtc(f.occurred_at.value);
  need('occurred_at', at, 'is required');
  if (at)
    need('occurred_at', Date.parse(at) <= Date.now() + 5 * 60000,
      'must not be more than 5 minutes in the future');
  body.occurred_at = at;
  need('risk_level', f.risk_level.value, 'is required');
  body.risk_level = f.risk_level.value;
  if (GRAVITY_CATEGORIES.has(body.category) && f.gravity.value)
    body.gravity = Number(f.gravity.value);
  const restricted = [...f.querySelectorAll('input[name=restricted_to]:checked')]
    .map((c) => c.value);
  need('restricted_to', restricted.length <= 20, 'must have 1 to 20 items');
  if (restricted.length)
    body.restricted_to = restricted;
  readGrading(f, body, need);
  return { body, errors };
}

function readGrading(f, body, need) {
  const source = f.grading_source.value, assessment = f.grading_assessment.value;
  const handling = f.handling.value, conditions = f.conditions.value.trim();
  if (!source && !assessment && !handling) {
    need('grading', session.me.role !== 'police_liaison',
      'is required for police intelligence (3x5x2)');
    return;
  }
  need('grading.source', source, 'is required');
  need('grading.assessment', assessment, 'is required');
  need('grading.handling', handling, 'is required');
  const g = { scheme: '3x5x2', source: Number(source), assessment, handling };
  if (handling === 'C') {
    need('grading.conditions', conditions, 'is required when handling is C');
    need('grading.conditions', [...conditions].length <= 2000,
      'must be a string of 1 to 2000 characters');
    g.conditions = conditions;
  }
  body.grading = g;
}

async function submit(event) {
  event.preventDefault();
  const f = form();
  const out = $('#post-status');
  out.textContent = '';
  const { body, errors } = read();
  if (errors.length) {
    showErrors(f, errors);
    out.textContent = 'Please correct the fields marked.';
    return;
  }
  clearErrors(f);
  const text = JSON.stringify(body);
  const key = unsent && unsent.body === text ? unsent.key : crypto.randomUUID();
  unsent = { key, body: text };
  const button = f.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const item = await api('POST', '/v1/intelligence', text, {
      headers: { 'Idempotency-Key': key } });
    unsent = null;
    out.textContent = `Shared. Item ${item.id}` +
      (item.grading ? `, graded ${item.grading.text}.` : '.');
    f.summary.value = '';
    f.detail.value = '';
    f.conditions.value = '';
    f.occurred_at.value = toLocalInput(new Date());
  } catch (e) {
    if (e instanceof ApiError) {
      unsent = null;
      const rest = e.status === 422 ? showErrors(f, e.errors) : '';
      out.textContent = e.status === 422
        ? `Not shared: please correct the fields marked.${rest ? ` ${rest}` : ''}`
        : `Not shared: ${explain(e)}`;
    } else {
      out.textContent = 'Not sent: the server could not be reached. Press Share again to ' +
        'retry; it will not be shared twice.';
    }
  } finally {
    button.disabled = false;
  }
}
