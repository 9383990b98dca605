// Young people (hub managers): GET /v1/subjects with a `q` search, and one young person's
// record: GET /v1/subjects/{id}, their intelligence and their actions. The id is kept in
// memory, never in the page's URL.
'use strict';

import { api, el, $, fill, label, when, day, explain, debounce, rememberSubject,
  session } from './lib.js';

let current = null; // the id of the record shown, or null for the list

export function initSubjects() {
  $('#subjects-search').addEventListener('input', debounce(refreshSubjects, 250));
}

export async function refreshSubjects() {
  if (current)
    return openSubject(current);
  const q = $('#subjects-search').value.trim();
  const out = $('#subjects-status');
  try {
    const path = '/v1/subjects?limit=200' + (q ? `&q=${encodeURIComponent(q.slice(0, 100))}` : '');
    const page = await api('GET', path);
    page.items.forEach(rememberSubject);
    fill($('#subjects-rows'), page.items.map(row));
    out.textContent = page.items.length ? (page.next ? 'Showing the newest 200; search to narrow.' : '')
      : q ? 'No young person matches.' : 'No young people yet.';
  } catch (e) {
    out.textContent = `Could not load the young people: ${explain(e)}`;
  }
}

function row(s) {
  const open = el('button', { type: 'button', class: 'link' }, 'Open');
  open.addEventListener('click', () => openSubject(s.id));
  return el('tr', { 'data-subject-id': s.id },
    el('td', {}, s.reference),
    el('td', {}, `${s.given_name} ${s.family_name}`),
    el('td', {}, label.status(s.status)),
    el('td', {}, s.key_worker),
    el('td', {}, s.team.map(label.agency).join(', ') || '-'),
    el('td', {}, open));
}

export async function openSubject(id) {
  current = id;
  const box = $('#subject-record');
  try {
    const q = encodeURIComponent(id);
    const [s, intel, actions] = await Promise.all([
      api('GET', `/v1/subjects/${q}`),
      api('GET', `/v1/intelligence?subject_id=${q}&limit=200`),
      api('GET', `/v1/actions?subject_id=${q}&status=open,overdue,completed,cancelled&sort=due&limit=200`),
    ]);
    record(box, s, intel.items, actions.items);
  } catch (e) {
    fill(box, el('p', {}, `Could not open the record: ${explain(e)}`), back());
  }
  $('#subjects-list-area').hidden = true;
  box.hidden = false;
  box.querySelector('h2').focus();
}

function back() {
  const b = el('button', { type: 'button', class: 'secondary' }, 'Back to the list');
  b.addEventListener('click', () => {
    current = null;
    $('#subject-record').hidden = true;
    $('#subjects-list-area').hidden = false;
    refreshSubjects();
  });
  return b;
}

function record(box, s, intel, actions) {
  fill(box,
    el('p', {}, back()),
    el('h2', { tabindex: -1 }, label.person(s)),
    el('dl', { class: 'facts' },
      el('dt', {}, 'Status'), el('dd', {}, label.status(s.status)),
      el('dt', {}, 'Date of birth'), el('dd', {}, day(s.date_of_birth)),
      el('dt', {}, 'Key worker'), el('dd', {}, s.key_worker),
      el('dt', {}, 'Hub'), el('dd', {}, (session.hubs.get(s.hub_id) || { name: '-' }).name),
      el('dt', {}, 'Team'), el('dd', {}, s.team.map(label.agency).join(', ') || '-')),
    el('h3', {}, 'Intelligence'),
    intel.length ? el('ul', { class: 'items' }, intel.map((i) => item(i, true)))
      : el('p', { class: 'none' }, 'No intelligence you may see.'),
    el('h3', {}, 'Actions'),
    actions.length ? el('ul', { class: 'items' }, actions.map(action))
      : el('p', { class: 'none' }, 'No actions.'));
}

// An intelligence item as the agenda shows it: risk, category, time, summary, grading,
// conditions (the record view adds the detail).
export function item(i, withDetail) {
  const g = i.grading;
  return el('li', { class: i.retracted ? 'retracted-item' : null },
    el('span', { class: `risk ${i.risk_level}` }, label.risk(i.risk_level)), ' ',
    label.category(i.category), ' ', el('small', {}, when(i.occurred_at)), ': ', i.summary,
    g ? [' ', el('small', {}, `Grading ${g.text}`)] : null,
    i.gravity ? [' ', el('small', {}, `Gravity ${i.gravity}`)] : null,
    withDetail && i.detail ? el('div', { class: 'small' }, i.detail) : null,
    g && g.conditions ? el('div', { class: 'cond' }, `Handling conditions: ${g.conditions}`)
      : null,
    i.retracted ? el('div', {}, el('strong', {}, 'Retracted: '), i.retracted.reason) : null);
}

// An action as the agenda shows it: description, owner, due date, notes.
export function action(a) {
  return el('li', { class: a.state === 'overdue' ? 'overdue' : null },
    el('span', { class: `state ${a.state}` }, a.state), ' ', a.description, ' ',
    el('small', {}, `(owner: ${a.owner_agency ? a.owner_agency.name : '-'}, due ${day(a.due_date)})`),
    a.completion_note ? el('div', {}, `Done: ${a.completion_note}`) : null,
    a.cannot_complete_reason ? el('div', {}, el('strong', {}, 'Cannot complete: '),
      a.cannot_complete_reason) : null,
    a.latest_progress ? el('div', {}, `Progress: ${a.latest_progress.note}`) : null);
}
