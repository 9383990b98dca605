// Meetings (hub managers): agenda suggestions for a hub, scheduling, the list of meetings
// and one meeting: start and close, the agenda (GET /v1/meetings/{id}/agenda, rendered in
// the same content and order as the server's HTML agenda), attendance, minutes under the
// three Signs of Safety headings, and actions agreed in the meeting. Events on the live
// feed refresh the open meeting's header and agenda, never a form being typed in.
'use strict';

import { api, el, $, fill, options, session, label, when, day, toUtc, today,
  showErrors, clearErrors, explain, debounce } from './lib.js';
import { item as itemLi, action as actionLi } from './subjects.js';

let current = null; // {meeting, agenda} of the open meeting, or null for the list

const HEADINGS = [['worried_about', 'What are we worried about?'],
  ['working_well', "What's working well?"]];
// 'cancelled' comes only on a fixed agenda and is shown only when there are some, as the
// server's printable agenda does
const ACTION_GROUPS = [['overdue', 'Overdue'], ['open', 'Open'],
  ['completed', 'Completed since the last meeting'], ['cancelled', 'Cancelled']];
const MINUTES = [['worried_about', 'What are we worried about?'],
  ['working_well', "What's working well?"], ['needs_to_happen', 'What needs to happen?'],
  ['decisions', 'Decisions']];

export function initMeetings() {
  const hubs = session.me.hub_ids.map((id) => [id, (session.hubs.get(id) || { name: id }).name]);
  options($('#hub'), hubs);
  $('#hub').addEventListener('change', loadSuggestions);
  fill($('#sm-agencies'), [...session.agencies.values()].map((a) => el('label', { class: 'check' },
    el('input', { type: 'checkbox', name: 'agency', value: a.id }), ' ', a.name)));
  $('#schedule-meeting').addEventListener('submit', schedule);
}

export async function refreshMeetings() {
  if (current)
    return openMeeting(current.meeting.id);
  await Promise.all([loadSuggestions(), loadList()]);
}

// ---- planning

async function loadSuggestions() {
  const hub = $('#hub').value;
  const out = $('#suggestions-status');
  if (!hub) {
    out.textContent = 'You do not manage a hub.';
    return;
  }
  try {
    const s = await api('GET', `/v1/hubs/${encodeURIComponent(hub)}/agenda-suggestions?limit=50`);
    fill($('#suggestions'), s.items.map(suggestion));
    out.textContent = s.items.length ? '' : 'No young people in this hub yet.';
  } catch (e) {
    out.textContent = `Could not load the suggestions: ${explain(e)}`;
  }
}

function suggestion(x) {
  const s = x.subject;
  const id = `sg-${s.id}`;
  const box = el('input', { type: 'checkbox', id, name: 'subject', value: s.id });
  // ticking a young person invites the agencies on their team
  box.addEventListener('change', () => {
    if (!box.checked)
      return;
    for (const a of s.team) {
      const c = $(`#sm-agencies input[value="${a.id}"]`);
      if (c)
        c.checked = true;
    }
  });
  return el('li', { 'data-subject-id': s.id },
    box, ' ',
    el('label', { for: id, class: 'inline' }, label.person(s)), ' ',
    el('span', { class: 'score' }, `score ${x.score}`),
    el('div', { class: 'small' }, x.reasons.join('; ') || 'nothing new'),
    x.next_meeting ? el('div', { class: 'small' },
      `Already on ${x.next_meeting.title}, ${when(x.next_meeting.scheduled_for)}`) : null);
}

async function schedule(event) {
  event.preventDefault();
  const f = event.target;
  const out = $('#schedule-status');
  const errors = [];
  const title = f.title.value.trim();
  if (!title)
    errors.push({ field: 'title', message: 'is required' });
  const at = toUtc(f.scheduled_for.value);
  if (!at)
    errors.push({ field: 'scheduled_for', message: 'is required' });
  const subjects = [...document.querySelectorAll('#suggestions input[name=subject]:checked')]
    .map((c) => c.value);
  const agencies = [...f.querySelectorAll('input[name=agency]:checked')].map((c) => c.value);
  if (subjects.length > 50)
    errors.push({ field: 'subject_ids', message: 'at most 50 young people' });
  if (agencies.length > 30)
    errors.push({ field: 'invited_agencies', message: 'at most 30 agencies' });
  if (!$('#hub').value)
    errors.push({ field: 'hub_id', message: 'choose a hub' });
  if (errors.length) {
    showErrors(f, errors);
    out.textContent = 'Please correct the fields marked.';
    return;
  }
  clearErrors(f);
  const body = { hub_id: $('#hub').value, title, scheduled_for: at, subject_ids: subjects,
    invited_agencies: agencies };
  if (f.location.value.trim())
    body.location = f.location.value.trim();
  try {
    const m = await api('POST', '/v1/meetings', body);
    out.textContent = '';
    f.reset();
    for (const c of document.querySelectorAll('#suggestions input:checked'))
      c.checked = false;
    await openMeeting(m.id);
  } catch (e) {
    const rest = e.status === 422 ? showErrors(f, e.errors) : '';
    out.textContent = `Not scheduled: ${e.status === 422 ? 'please correct the fields marked.'
      : explain(e)}${rest ? ` ${rest}` : ''}`;
  }
}

async function loadList() {
  const out = $('#meetings-status');
  try {
    const page = await api('GET', '/v1/meetings?limit=100');
    fill($('#meetings-rows'), page.items.map((m) => {
      const open = el('button', { type: 'button', class: 'link' }, 'Open');
      open.addEventListener('click', () => openMeeting(m.id));
      return el('tr', { 'data-meeting-id': m.id },
        el('td', {}, when(m.scheduled_for)), el('td', {}, m.title),
        el('td', {}, m.hub_name), el('td', {}, stateText(m.status)), el('td', {}, open));
    }));
    out.textContent = page.items.length ? '' : 'No meetings yet.';
  } catch (e) {
    out.textContent = `Could not load the meetings: ${explain(e)}`;
  }
}

function stateText(status) {
  return { scheduled: 'Scheduled', started: 'Started: in progress', closed: 'Closed' }[status]
    || status;
}

// ---- one meeting

async function fetchMeeting(id) {
  const q = encodeURIComponent(id);
  const [meeting, agenda] = await Promise.all([api('GET', `/v1/meetings/${q}`),
    api('GET', `/v1/meetings/${q}/agenda?format=json`)]);
  return { meeting, agenda };
}

export async function openMeeting(id) {
  try {
    current = await fetchMeeting(id);
  } catch (e) {
    $('#meetings-status').textContent = `Could not open the meeting: ${explain(e)}`;
    current = null;
    return;
  }
  const box = $('#meeting');
  fill(box,
    el('p', { class: 'no-print' }, backButton()),
    el('div', { id: 'meeting-head' }),
    el('div', { class: 'agenda-tools no-print' },
      el('button', { type: 'button', id: 'print-agenda' }, 'Print the agenda'), ' ',
      el('a', { id: 'agenda-html', href: `/v1/meetings/${encodeURIComponent(id)}/agenda?format=html`,
        target: '_blank', rel: 'noopener noreferrer' }, 'Printable agenda page (opens a new tab)')),
    el('article', { id: 'agenda', 'aria-label': 'Agenda' }),
    el('div', { class: 'meeting-work no-print' },
      el('div', {}, minutesForm(), attendanceForm()),
      el('div', {}, addActionForm(), el('div', { id: 'meeting-actions' }))));
  $('#print-agenda').addEventListener('click', () => window.print());
  $('#meetings-home').hidden = true;
  box.hidden = false;
  render();
  $('#meeting h2').focus();
}

function backButton() {
  const b = el('button', { type: 'button', class: 'secondary' }, 'All meetings');
  b.addEventListener('click', () => {
    current = null;
    $('#meeting').hidden = true;
    fill($('#meeting'));
    $('#meetings-home').hidden = false;
    refreshMeetings();
  });
  return b;
}

// The parts that follow the server: header, agenda, agreed actions, forms' enabled state.
function render() {
  const { meeting: m, agenda } = current;
  const chair = m.chair && m.chair.id === session.me.id;
  const start = el('button', { type: 'button', id: 'start-meeting',
    disabled: !(chair && m.status === 'scheduled') }, 'Start the meeting');
  const close = el('button', { type: 'button', id: 'close-meeting',
    disabled: !(chair && m.status === 'started') }, 'Close the meeting');
  start.addEventListener('click', () => transition('start'));
  close.addEventListener('click', () => transition('close'));
  fill($('#meeting-head'),
    el('h2', { tabindex: -1 }, m.title),
    el('p', {}, 'State: ', el('strong', { id: 'meeting-state' }, stateText(m.status)),
      m.started_at ? ` (started ${when(m.started_at)})` : '',
      m.closed_at ? ` (closed ${when(m.closed_at)})` : ''),
    el('p', { class: 'no-print' }, start, ' ', close,
      chair ? '' : el('span', { class: 'hint' }, ` Only the chair, ${m.chair.display_name}, ` +
        'starts and closes the meeting.')),
    el('p', { id: 'meeting-msg', role: 'status', class: 'no-print' }));
  renderAgenda($('#agenda'), agenda);
  renderAgreed(m);
  for (const id of ['attendance', 'minutes', 'add-action'])
    $(`#${id} fieldset`).disabled = m.status === 'closed';
}

async function transition(what) {
  const id = current.meeting.id;
  try {
    await api('POST', `/v1/meetings/${encodeURIComponent(id)}/${what}`);
    await reload();
    $('#meeting-msg').textContent = what === 'start'
      ? 'The meeting has started: the agenda is fixed.'
      : 'The meeting is closed: attendance and minutes are locked.';
  } catch (e) {
    $('#meeting-msg').textContent = `Could not ${what} the meeting: ${explain(e)}`;
  }
}

// Fetch the meeting and agenda again and re-render what follows them (forms keep their text).
async function reload() {
  if (!current)
    return;
  try {
    current = await fetchMeeting(current.meeting.id);
    render();
  } catch (e) {
    if (e.status === 404) // no longer visible
      $('#meeting-msg').textContent = 'This meeting is no longer available to you.';
  }
}

// Refresh after an event: the open meeting, or the list and suggestions.
export const reloadSoon = debounce(() => (current ? reload() : refreshMeetings()), 400);

// Does an event from the feed concern the open meeting?
export function concernsMeeting(type, d) {
  if (!current)
    return type.startsWith('meeting.') && !$('#view-meetings').hidden;
  if (type.startsWith('meeting.'))
    return d.id === current.meeting.id;
  const ids = new Set(current.meeting.young_people.map((y) => y.id));
  return ids.has(d.subject_id);
}

// The agenda, in the order and with the content of the server's HTML agenda (common/agenda.c).
function renderAgenda(box, a) {
  const m = a.meeting;
  const dl = (pairs) => el('dl', { class: 'facts' },
    pairs.map(([t, v]) => [el('dt', {}, t), el('dd', {}, v || '-')]));
  const names = (list) => list.map((x) => x.name).join(', ') || '-';
  fill(box,
    el('p', { class: 'agenda-marking' }, a.marking),
    el('h2', {}, `RAISE meeting: ${m.title}`),
    dl([['Hub', m.hub_name], ['When', when(m.scheduled_for)], ['Where', m.location],
      ['Chair', m.chair && m.chair.display_name], ['Invited', names(m.invited_agencies)],
      ['Status', m.status]]),
    el('p', {}, a.frozen ? 'Agenda fixed when the meeting started.'
      : 'Agenda built live from the latest intelligence and actions.'),
    a.young_people.length ? a.young_people.map((e, i) => {
      const s = e.subject;
      const reasons = e.reasons.length ? ` (${e.reasons.join('; ')})` : '';
      return el('section', { class: 'agenda-subject', 'data-subject-id': s.id },
        el('h3', {}, `${i + 1}. ${s.given_name} ${s.family_name} (${s.reference})`),
        dl([['Status', label.status(s.status)], ['Key worker', s.key_worker],
          ['Team', names(s.team)], ['Risk score', `${e.score}${reasons}`],
          ['Intelligence since', when(e.since)]]),
        HEADINGS.map(([k, h]) => [el('h4', {}, h), e[k].length
          ? el('ul', {}, e[k].map((i) => itemLi(i))) : el('p', { class: 'none' }, 'Nothing new.')]),
        el('h4', {}, 'What needs to happen?'),
        ACTION_GROUPS.map(([k, h]) => {
          const list = e.needs_to_happen[k] || [];
          if (k === 'cancelled' && !list.length)
            return null;
          return [el('p', {}, `${h} actions:${list.length ? '' : ' none.'}`),
            list.length ? el('ul', {}, list.map(actionLi)) : null];
        }));
    }) : el('p', { class: 'none' }, 'No young people on this agenda.'),
    el('p', { class: 'agenda-marking' }, a.marking_end));
}

// Actions agreed in this meeting, per young person (GET /v1/meetings/{id} young_people).
function renderAgreed(m) {
  const people = m.young_people.filter((y) => y.actions.length);
  fill($('#meeting-actions'), el('h3', {}, 'Actions agreed in this meeting'),
    people.length ? people.map((y) => [el('h4', {}, label.person(y)),
      el('ul', {}, y.actions.map((a) => el('li', {}, a.description, ' ',
        el('small', {}, `(${label.agency(a.owner_agency_id)}, due ${day(a.due_date)}, ` +
          `${a.status})`))))])
      : el('p', { class: 'none' }, 'None yet.'));
}

// ---- forms (built once per opening, so text being typed survives a refresh)

function field(id, text, input, name) {
  return el('p', {}, el('label', { for: id }, text), input,
    el('span', { class: 'field-error', 'data-field': name || input.name }));
}

function people() {
  return current.meeting.young_people.map((y) => [y.id, label.person(y)]);
}

function addActionForm() {
  const subject = el('select', { id: 'aa-subject', name: 'subject_id' });
  const owner = el('select', { id: 'aa-owner', name: 'owner_agency_id' });
  options(subject, people(), 'Choose a young person');
  if (people().length === 1)
    subject.value = people()[0][0];
  // the owner must be on the young person's team
  const team = () => {
    const e = current.agenda.young_people.find((y) => y.subject.id === subject.value);
    options(owner, e ? e.subject.team.map((a) => [a.id, a.name]) : [], 'Choose an agency');
  };
  subject.addEventListener('change', team);
  team();
  const form = el('form', { id: 'add-action', novalidate: true },
    el('fieldset', {}, el('legend', {}, 'Add an action'),
      field('aa-subject', 'Young person', subject),
      field('aa-owner', 'Agency responsible', owner),
      field('aa-desc', 'What needs to happen', el('textarea', { id: 'aa-desc',
        name: 'description', rows: 2, maxlength: 2000 })),
      field('aa-due', 'Due by', el('input', { id: 'aa-due', name: 'due_date', type: 'date',
        min: today() })),
      el('p', {}, el('button', { type: 'submit' }, 'Add the action')),
      el('p', { class: 'form-status', role: 'status' })));
  form.addEventListener('submit', addAction);
  return form;
}

async function addAction(event) {
  event.preventDefault();
  const f = event.target;
  const out = f.querySelector('.form-status');
  const body = { subject_id: f.subject_id.value, owner_agency_id: f.owner_agency_id.value,
    description: f.description.value.trim(), due_date: f.due_date.value };
  const errors = Object.entries(body).filter(([, v]) => !v)
    .map(([field]) => ({ field, message: 'is required' }));
  if (body.due_date && body.due_date < today())
    errors.push({ field: 'due_date', message: 'must be today or later' });
  if (errors.length) {
    showErrors(f, errors);
    out.textContent = 'Please correct the fields marked.';
    return;
  }
  clearErrors(f);
  try {
    await api('POST', `/v1/meetings/${encodeURIComponent(current.meeting.id)}/actions`, body);
    f.description.value = '';
    out.textContent = 'Action added.';
    await reload();
  } catch (e) {
    const rest = e.status === 422 ? showErrors(f, e.errors) : '';
    out.textContent = `Not added: ${e.status === 422 ? 'please correct the fields marked.'
      : explain(e)}${rest ? ` ${rest}` : ''}`;
  }
}

function minutesForm() {
  const subject = el('select', { id: 'mn-subject', name: 'subject_id' });
  options(subject, people());
  const boxes = MINUTES.map(([k, h]) => field(`mn-${k}`, h,
    el('textarea', { id: `mn-${k}`, name: k, rows: 3, maxlength: 20000 })));
  const form = el('form', { id: 'minutes', novalidate: true },
    el('fieldset', {}, el('legend', {}, 'Minutes'),
      field('mn-subject', 'Young person', subject), boxes,
      el('p', {}, el('button', { type: 'submit' }, 'Save the minutes')),
      el('p', { class: 'form-status', role: 'status' })));
  // show the saved minutes of the young person chosen
  const load = () => {
    const y = current.meeting.young_people.find((p) => p.id === subject.value);
    for (const [k] of MINUTES)
      form.elements[k].value = (y && y.minutes && y.minutes[k]) || '';
  };
  subject.addEventListener('change', load);
  load();
  form.addEventListener('submit', saveMinutes);
  return form;
}

async function saveMinutes(event) {
  event.preventDefault();
  const f = event.target;
  const out = f.querySelector('.form-status');
  if (!f.subject_id.value) {
    out.textContent = 'There is no young person on this meeting.';
    return;
  }
  const entry = { subject_id: f.subject_id.value };
  for (const [k] of MINUTES)
    entry[k] = f.elements[k].value;
  try {
    await api('PATCH', `/v1/meetings/${encodeURIComponent(current.meeting.id)}`,
      { minutes: [entry] });
    out.textContent = `Minutes saved at ${when(new Date().toISOString())}.`;
    await reload();
  } catch (e) {
    const rest = e.status === 422 ? showErrors(f, e.errors) : '';
    out.textContent = `Not saved: ${explain(e)}${rest ? ` ${rest}` : ''}`;
  }
}

function attendanceForm() {
  const rows = el('div', { class: 'attendance-rows' });
  const agencies = [...session.agencies.values()].map((a) => [a.id, a.name]);
  let n = 0;
  const addRow = (name, agency) => {
    const i = n++;
    const sel = el('select', { id: `at-agency-${i}`, name: 'agency_id' });
    options(sel, agencies, 'Agency');
    if (agency)
      sel.value = agency;
    rows.append(el('div', { class: 'attendance-row' },
      el('p', {}, el('label', { for: `at-name-${i}` }, 'Name'),
        el('input', { id: `at-name-${i}`, name: 'name', maxlength: 200, value: name || '' })),
      el('p', {}, el('label', { for: `at-agency-${i}` }, 'Agency'), sel)));
  };
  for (const a of current.meeting.attendance)
    addRow(a.name, a.agency_id);
  addRow('', '');
  const more = el('button', { type: 'button', class: 'secondary' }, 'Add another person');
  more.addEventListener('click', () => {
    addRow('', '');
    rows.lastChild.querySelector('input').focus();
  });
  const form = el('form', { id: 'attendance', novalidate: true },
    el('fieldset', {}, el('legend', {}, 'Attendance'), rows,
      el('span', { class: 'field-error', 'data-field': 'attendance' }),
      el('p', {}, more, ' ', el('button', { type: 'submit' }, 'Save attendance')),
      el('p', { class: 'form-status', role: 'status' })));
  form.addEventListener('submit', saveAttendance);
  return form;
}

async function saveAttendance(event) {
  event.preventDefault();
  const f = event.target;
  const out = f.querySelector('.form-status');
  const list = [];
  for (const row of f.querySelectorAll('.attendance-row')) {
    const name = row.querySelector('[name=name]').value.trim();
    const agency = row.querySelector('[name=agency_id]').value;
    if (!name && !agency)
      continue;
    if (!name || !agency) {
      out.textContent = 'Each person needs a name and an agency.';
      return;
    }
    list.push({ name, agency_id: agency });
  }
  try {
    await api('PATCH', `/v1/meetings/${encodeURIComponent(current.meeting.id)}`,
      { attendance: list });
    out.textContent = `Attendance saved: ${list.length} ${list.length === 1 ? 'person' : 'people'}.`;
    await reload();
  } catch (e) {
    const rest = e.status === 422 ? e.errors.map((x) => `${x.field}: ${x.message}`).join('; ') : '';
    out.textContent = `Not saved: ${explain(e)}${rest ? ` (${rest})` : ''}`;
  }
}
