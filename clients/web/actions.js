// My actions: GET /v1/actions (by default the caller's own agency's open and overdue
// actions; a hub manager's default is everything they may see) with the counts of
// GET /v1/actions/summary on top. Users of the owner agency complete an action (a note is
// required), say it cannot be completed (a reason), or add a progress update; hub managers
// cancel and reopen. The list refreshes itself when an action.* event arrives.
'use strict';

import { api, el, $, fill, session, day, explain, debounce, today } from './lib.js';

const ORDER = { overdue: 0, open: 1, completed: 2, cancelled: 3 };
let open = null; // the form row being filled in: {id, kind, row}

// The forms each button opens: the route, the fields, and who may use it.
const FORMS = {
  complete: { title: 'Complete', route: 'complete', owner: true, from: ['open', 'overdue'],
    fields: [['note', 'What was done (required)', 'textarea', 4000],
      ['evidence', 'Evidence reference (optional)', 'input', 500]] },
  cannot: { title: 'Cannot complete', route: 'cannot-complete', owner: true,
    from: ['open', 'overdue'], fields: [['reason', 'Why it cannot be done', 'textarea', 2000]] },
  progress: { title: 'Progress update', route: 'progress', owner: true,
    from: ['open', 'overdue'], fields: [['note', 'Progress so far', 'textarea', 4000]] },
  cancel: { title: 'Cancel', route: 'cancel', manager: true, from: ['open', 'overdue'],
    fields: [['reason', 'Why it is cancelled', 'textarea', 2000]] },
  reopen: { title: 'Reopen', route: 'reopen', manager: true, from: ['completed', 'cancelled'],
    fields: [['reason', 'Why it is reopened', 'textarea', 2000],
      ['due_date', 'New due date (optional)', 'date', 10]] },
};

export function initActions() {
  $('#actions-filter').addEventListener('change', refreshActions);
}

export const refreshSoon = debounce(() => refreshActions(), 300);

function listPath() {
  const f = $('#actions-filter').value;
  const mine = session.me.role === 'hub_manager' ? '' : `&agency_id=${session.me.agency.id}`;
  if (f === 'completed')
    return `/v1/actions?status=completed&sort=due${mine}`;
  if (f === 'all')
    return `/v1/actions?status=open,overdue,completed,cancelled&sort=due${mine}`;
  // "outstanding": the route's own default for agencies, the same states for managers
  return session.me.role === 'hub_manager' ? '/v1/actions?status=open,overdue&sort=due'
    : '/v1/actions?sort=due';
}

export async function refreshActions() {
  const out = $('#actions-status');
  try {
    const [summary, list] = await Promise.all([
      api('GET', '/v1/actions/summary'), api('GET', `${listPath()}&limit=200`)]);
    counts(summary.counts);
    rows(list.items);
    out.textContent = list.items.length ? '' : 'Nothing to show.';
  } catch (e) {
    out.textContent = `Could not load the actions: ${explain(e)}`;
  }
}

function counts(c) {
  fill($('#action-counts'),
    el('span', { class: c.overdue ? 'count overdue' : 'count' }, `${c.overdue} overdue`),
    el('span', { class: 'count' }, `${c.open} open`),
    el('span', { class: 'count' }, `${c.completed} completed`),
    el('span', { class: 'count' }, `${c.cancelled} cancelled`));
}

function rows(items) {
  items.sort((a, b) => ORDER[a.state] - ORDER[b.state] || a.due_date.localeCompare(b.due_date));
  const body = $('#actions-rows');
  const keep = open && items.some((a) => a.id === open.id) ? open : null;
  fill(body, items.map(row));
  open = null;
  if (keep) {
    const tr = body.querySelector(`tr[data-action-id="${keep.id}"]`);
    tr.after(keep.row);
    open = keep;
  }
}

function row(a) {
  const mine = a.owner_agency && a.owner_agency.id === session.me.agency.id;
  const manager = session.me.role === 'hub_manager' && session.me.hub_ids.includes(a.hub_id);
  const buttons = Object.entries(FORMS)
    .filter(([, f]) => f.from.includes(a.state) && ((f.owner && mine) || (f.manager && manager)))
    .map(([kind, f]) => el('button', { type: 'button', class: kind }, f.title));
  const tr = el('tr', { 'data-action-id': a.id, 'data-state': a.state, class: a.state },
    el('td', {}, el('span', { class: `state ${a.state}` }, a.state)),
    el('td', {}, day(a.due_date)),
    el('td', {}, a.subject_reference || ''),
    el('td', {}, el('div', {}, a.description),
      a.completion_note ? el('div', { class: 'small' }, `Done: ${a.completion_note}`) : null,
      a.evidence_ref ? el('div', { class: 'small' }, `Evidence: ${a.evidence_ref}`) : null,
      a.cannot_complete_reason ? el('div', { class: 'small warn' },
        `Cannot complete: ${a.cannot_complete_reason}`) : null,
      a.latest_progress ? el('div', { class: 'small' },
        `Progress: ${a.latest_progress.note}`) : null,
      a.cancel_reason ? el('div', { class: 'small' }, `Cancelled: ${a.cancel_reason}`) : null),
    el('td', {}, a.owner_agency ? a.owner_agency.name : ''),
    el('td', { class: 'buttons' }, buttons));
  for (const b of buttons)
    b.addEventListener('click', () => openForm(a, b.className, tr));
  return tr;
}

// A form in a row under the action: form.complete-form, form.cannot-form, ...
function openForm(a, kind, tr) {
  if (open)
    open.row.remove();
  const spec = FORMS[kind];
  const form = el('form', { class: `${kind}-form action-form`, novalidate: true });
  form.append(el('h3', {}, `${spec.title}: ${a.description}`));
  for (const [name, text, type, max] of spec.fields) {
    const id = `af-${kind}-${name}`;
    const input = type === 'textarea'
      ? el('textarea', { id, name, rows: 3, maxlength: max })
      : el('input', { id, name, type: type === 'date' ? 'date' : 'text', maxlength: max,
        min: type === 'date' ? today() : null });
    form.append(el('p', {}, el('label', { for: id }, text), input));
  }
  const out = el('p', { class: 'form-status', role: 'status' });
  const cancel = el('button', { type: 'button', class: 'secondary' }, 'Close');
  form.append(el('p', {}, el('button', { type: 'submit' }, spec.title), ' ', cancel), out);
  const row = el('tr', { class: 'form-row' }, el('td', { colspan: 6 }, form));
  tr.after(row);
  open = { id: a.id, kind, row };
  cancel.addEventListener('click', () => {
    row.remove();
    open = null;
    tr.querySelector(`button.${kind}`).focus();
  });
  form.addEventListener('submit', (e) => send(e, a, kind, form, out));
  form.querySelector('textarea, input').focus();
}

async function send(event, a, kind, form, out) {
  event.preventDefault();
  const spec = FORMS[kind];
  const body = {};
  for (const [name] of spec.fields) {
    const v = form.elements[name].value.trim();
    if (v)
      body[name === 'evidence' ? 'evidence_ref' : name] = v;
  }
  const required = spec.fields[0][0];
  if (!body[required]) {
    out.textContent = `Please write the ${required}: it is required.`;
    form.elements[required].focus();
    return;
  }
  form.querySelector('button[type=submit]').disabled = true;
  try {
    await api('POST', `/v1/actions/${a.id}/${spec.route}`, body);
    open.row.remove();
    open = null;
    $('#actions-status').textContent = `${spec.title}: saved.`;
    await refreshActions();
  } catch (e) {
    out.textContent = e.status === 409
      ? 'Someone has already changed this action; the list is refreshed.'
      : `Not saved: ${explain(e)}`;
    form.querySelector('button[type=submit]').disabled = false;
    if (e.status === 409)
      refreshActions();
  }
}
