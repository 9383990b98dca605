// Browser tests of the raised web page (clients/web/), run by the integration suite
// "browser" (tests/integration/test_browser.c), which starts the server, creates the users
// and the young person, and passes them in a JSON file: node web.test.mjs CONFIG.json
//
// The browser is Debian's chromium (never a downloaded one), driven by playwright-core. It
// trusts exactly the test server's key (--ignore-certificate-errors-spki-list), nothing
// else. Every console error and every Content-Security-Policy violation fails the run.
// Screenshots of each screen and the printed agenda (PDF) go to CONFIG.out_dir.
import { chromium } from 'playwright-core';
import { createHash, createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = cfg.out_dir;
fs.mkdirSync(out, { recursive: true });
const run = `${process.pid}`;
const TIMEOUT = 10000;

const spki = createHash('sha256')
  .update(createPublicKey(fs.readFileSync(cfg.server_cert)).export({ type: 'spki', format: 'der' }))
  .digest('base64');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // the machine's network is closed: no background connections, updates or sync
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', `--ignore-certificate-errors-spki-list=${spki}`],
});

let failures = 0;
let step = '';
const problems = []; // console errors and CSP violations, from every page

function check(ok, what) {
  if (!ok)
    throw new Error(`${step}: ${what}`);
}

// Network errors the tests provoke on purpose: the page asks /v1/me before sign-in (401),
// the server refuses the bad post (422), and the test itself answers one sign-out 503.
// Chromium logs each as a console error.
const expected = /Failed to load resource: the server responded with a status of (401|422)/;
const provoked = (m) => /status of 503/.test(m.text()) &&
  (m.location().url || '').endsWith('/v1/sessions/current');

async function browserUser(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, locale: 'en-GB', timezoneId: 'Europe/London' });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected.test(m.text()) && !provoked(m))
      problems.push(`${name}: console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${name}: uncaught: ${e.message}`));
  return { name, context, page, user: cfg.users[name] };
}

async function shot(u, screen) {
  await u.page.screenshot({ path: path.join(out, `${screen}.png`), fullPage: true });
}

async function cspOf(u) {
  return u.page.evaluate(() => window.__csp || []);
}

async function signIn(u) {
  await u.page.goto(cfg.url + '/');
  await u.page.locator('form#sign-in').waitFor();
  await u.page.fill('#username', u.user.username);
  await u.page.fill('#password', u.user.password);
  await u.page.click('form#sign-in button[type=submit]');
  await u.page.locator('#whoami', { hasText: u.user.display_name }).waitFor();
}

async function view(u, name) {
  await u.page.click(`nav#views [data-view="${name}"]`);
  await u.page.locator(`section#view-${name}`).waitFor({ state: 'visible' });
}

async function markings(u) {
  const text = await u.page.locator('body').innerText();
  const n = text.split('OFFICIAL-SENSITIVE').length - 1;
  check(n >= 2, `${u.name}: OFFICIAL-SENSITIVE at top and bottom (seen ${n} times)`);
}

function tomorrow(hours) {
  const d = new Date(Date.now() + 24 * 3600 * 1000);
  d.setHours(hours, 0, 0, 0);
  const p = (n) => String(n).padStart(2, '0');
  return {
    local: `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:00`,
    date: `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`,
  };
}

const tests = [];
const extra = []; // users some tests add
function test(name, fn) {
  tests.push({ name, fn });
}

const officer = await browserUser('officer');
const nurse = await browserUser('nurse');
const manager = await browserUser('manager');
const summary = `Seen at the bus station ${run}`;
const conditions = `Not to be shared with the young person ${run}`;
const action = `Book a GP appointment ${run}`;

test('each kind of user signs in; the sign-in screen carries the marking', async () => {
  await officer.page.goto(cfg.url + '/');
  await officer.page.locator('form#sign-in').waitFor();
  await markings(officer);
  await shot(officer, '01-sign-in');
  // a wrong password: an error, still on the sign-in form
  await officer.page.fill('#username', officer.user.username);
  await officer.page.fill('#password', 'not the password at all');
  await officer.page.click('form#sign-in button[type=submit]');
  await officer.page.locator('#status').filter({ hasText: /./ }).waitFor();
  check(await officer.page.locator('#whoami').count() === 0 ||
        !(await officer.page.locator('#whoami').innerText()).includes(officer.user.display_name),
        'a wrong password signed in');
  for (const u of [officer, nurse, manager]) {
    await signIn(u);
    await markings(u);
  }
  // the session is a cookie the page cannot read
  const cookies = await officer.context.cookies();
  const c = cookies.find((k) => k.name === 'raise_session');
  check(c && c.httpOnly && c.secure && c.sameSite === 'Strict', `cookie flags: ${JSON.stringify(c)}`);
  check(!(await officer.page.evaluate(() => document.cookie)).includes('raise_session'),
        'the page can read the session cookie');
});

test('the feed is live for the nurse', async () => {
  await view(nurse, 'feed');
  await nurse.page.locator('#feed-status', { hasText: 'live' }).waitFor();
});

test('the officer posts graded intelligence; the form shows field errors first', async () => {
  await view(officer, 'post');
  await shot(officer, '02-post-intelligence');
  const f = officer.page.locator('form#post-intel');
  await f.locator('[name=subject_id]').selectOption(cfg.subject_id);
  await f.locator('[name=category]').selectOption('missing_from_home');
  await f.locator('[name=risk_level]').selectOption('high');
  await f.locator('[name=grading_source]').selectOption('2');
  await f.locator('[name=grading_assessment]').selectOption('B');
  await f.locator('[name=handling]').selectOption('C');
  // no summary and no conditions: both named beside their fields, nothing posted
  await f.locator('button[type=submit]').click();
  await officer.page.locator('.field-error[data-field="summary"]').filter({ hasText: /./ }).waitFor();
  await officer.page.locator('.field-error[data-field="conditions"]').filter({ hasText: /./ }).waitFor();
  await shot(officer, '03-post-field-errors');
  await f.locator('[name=summary]').fill(summary);
  await f.locator('[name=conditions]').fill(conditions);
  await f.locator('button[type=submit]').click();
  await officer.page.locator('#post-status').filter({ hasText: /[0-9a-f]{8}-[0-9a-f]{4}-/ }).waitFor();
  check(await officer.page.locator('.field-error[data-field="summary"]').innerText() === '',
        'the summary error stayed after a good post');
});

test('a second browser sees it appear live, with grading and conditions', async () => {
  const item = nurse.page.locator('ol#feed > li.event', { hasText: summary });
  await item.waitFor();
  const text = await item.innerText();
  check(text.includes('2B C') || text.includes('2 B C'), `grading missing: ${text}`);
  check(text.includes(conditions), `conditions missing: ${text}`);
  check(text.includes(cfg.subject_reference), `reference missing: ${text}`);
  check(await nurse.page.locator('ol#feed > li.event', { hasText: summary }).count() === 1,
        'shown twice');
  await shot(nurse, '04-feed');
});

test('the feed resumes after a network drop without loss or duplicate', async () => {
  const before = await nurse.page.locator('ol#feed > li.event').count();
  await nurse.context.setOffline(true);
  await nurse.page.locator('#feed-status', { hasText: 'reconnecting' }).waitFor({ timeout: 30000 });
  // posted while the nurse is offline
  const missed = `While offline ${run}`;
  const posted = await officer.page.evaluate(async ([subject, text]) => {
    const me = await (await fetch('/v1/me')).json();
    const r = await fetch('/v1/intelligence', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token },
      body: JSON.stringify({
        subject_id: subject, category: 'other', summary: text, risk_level: 'low',
        occurred_at: new Date(Date.now() - 60000).toISOString().replace(/\.\d+Z$/, 'Z'),
        grading: { source: 1, assessment: 'A', handling: 'P' },
      }),
    });
    return r.status;
  }, [cfg.subject_id, missed]);
  check(posted === 201, `posting while the nurse is offline: ${posted}`);
  await nurse.context.setOffline(false);
  await nurse.page.locator('ol#feed > li.event', { hasText: missed }).waitFor({ timeout: 30000 });
  await nurse.page.locator('#feed-status', { hasText: 'live' }).waitFor({ timeout: 30000 });
  check(await nurse.page.locator('ol#feed > li.event', { hasText: missed }).count() === 1,
        'the missed event shown twice');
  check(await nurse.page.locator('ol#feed > li.event', { hasText: summary }).count() === 1,
        'an old event shown again after the resume');
  check(await nurse.page.locator('ol#feed > li.event').count() === before + 1,
        'the resume added more than the missed event');
});

test('the manager sees the young person, builds a meeting from suggestions, prints the agenda', async () => {
  await view(manager, 'subjects');
  await manager.page.locator(`tr[data-subject-id="${cfg.subject_id}"]`).waitFor();
  await shot(manager, '05-young-people');
  await view(manager, 'meetings');
  const hub = manager.page.locator('select#hub');
  if (await hub.count())
    await hub.selectOption(cfg.hub_id);
  const suggestion = manager.page.locator(`ol#suggestions > li[data-subject-id="${cfg.subject_id}"]`);
  await suggestion.waitFor();
  await shot(manager, '06-suggestions');
  await suggestion.locator('input[type=checkbox]').check();
  const f = manager.page.locator('form#schedule-meeting');
  await f.locator('[name=title]').fill(`RAISE ${run}`);
  await f.locator('[name=scheduled_for]').fill(tomorrow(10).local);
  await f.locator('[name=location]').fill('Hub room 2');
  for (const a of [cfg.police_agency_id, cfg.health_agency_id])
    await f.locator(`input[name=agency][value="${a}"]`).check();
  await f.locator('button[type=submit]').click();
  await manager.page.locator('#meeting').waitFor({ state: 'visible' });
  const agenda = manager.page.locator(`#agenda section.agenda-subject[data-subject-id="${cfg.subject_id}"]`);
  await agenda.waitFor();
  const text = await agenda.innerText();
  check(text.includes(summary), `the agenda lacks the new intelligence: ${text.slice(0, 400)}`);
  check(text.includes(conditions), 'the agenda lacks the handling conditions');
  await markings(manager);
  await shot(manager, '07-agenda');
  check(await manager.page.locator('a#agenda-html').count() === 1, 'no link to the printable agenda');
  await manager.page.click('button#large-type');
  check(await manager.page.evaluate(() => document.body.classList.contains('large')),
        'large type did not switch on');
  await shot(manager, '08-agenda-large-type');
  await manager.page.click('button#large-type');
  await manager.page.emulateMedia({ media: 'print' });
  const pdf = path.join(out, 'agenda.pdf');
  await manager.page.pdf({ path: pdf, format: 'A4', printBackground: true });
  await manager.page.emulateMedia({ media: 'screen' });
  const head = fs.readFileSync(pdf).subarray(0, 5).toString();
  check(head === '%PDF-' && fs.statSync(pdf).size > 2000, `agenda.pdf: ${head}`);
});

test('the manager records an action; the agency completes it; the manager sees it live', async () => {
  const f = manager.page.locator('form#add-action');
  await f.locator('[name=subject_id]').selectOption(cfg.subject_id);
  await f.locator('[name=owner_agency_id]').selectOption(cfg.health_agency_id);
  await f.locator('[name=description]').fill(action);
  await f.locator('[name=due_date]').fill(tomorrow(0).date);
  await f.locator('button[type=submit]').click();
  await manager.page.locator('#meeting', { hasText: action }).waitFor();
  await manager.page.click('button#start-meeting');
  await manager.page.locator('#meeting-state', { hasText: /start|progress/i }).waitFor();
  await shot(manager, '09-meeting-started');

  await view(nurse, 'actions');
  const row = nurse.page.locator('tr[data-action-id]', { hasText: action });
  await row.waitFor();
  check(await row.getAttribute('data-state') === 'open', 'the new action is not open');
  await nurse.page.locator('#action-counts', { hasText: /1 open/ }).waitFor();
  await shot(nurse, '10-my-actions');
  await row.locator('button.complete').click();
  const done = nurse.page.locator('form.complete-form');
  await done.locator('textarea[name=note]').fill('Appointment booked for Tuesday');
  await done.locator('button[type=submit]').click();
  await nurse.page.locator('#action-counts', { hasText: /0 open/ }).waitFor();

  // the manager's page hears action.completed on its own stream
  await manager.page.locator('ol#feed > li.event[data-type="action.completed"]', { hasText: action })
    .waitFor({ state: 'attached' });
  await view(manager, 'feed');
  await shot(manager, '11-manager-feed');
});

test('keyboard only: sign in, move between screens, focus is visible', async () => {
  const k = await browserUser('keyboard');
  k.user = cfg.users.nurse;
  extra.push(k);
  const p = k.page;
  const focused = () => p.evaluate(() => {
    const a = document.activeElement;
    return { id: a.id, view: a.dataset ? a.dataset.view || '' : '',
      outline: getComputedStyle(a).outlineStyle };
  });
  async function tabTo(want, what) {
    for (let i = 0; i < 40; i++) {
      await p.keyboard.press('Tab');
      if (want(await focused()))
        return;
    }
    check(false, `Tab never reached ${what}`);
  }
  await p.goto(cfg.url + '/');
  await p.locator('form#sign-in').waitFor();
  await tabTo((f) => f.id === 'username', 'the username');
  await p.keyboard.type(k.user.username);
  await p.keyboard.press('Tab');
  check((await focused()).id === 'password', 'Tab from the username does not reach the password');
  await p.keyboard.type(k.user.password);
  await p.keyboard.press('Enter');
  await p.locator('#whoami', { hasText: k.user.display_name }).waitFor();
  await tabTo((f) => f.view === 'actions', 'the My actions button');
  const f = await focused();
  check(f.outline !== 'none', `the focused button shows no outline (${f.outline})`);
  await p.keyboard.press('Enter');
  await p.locator('section#view-actions').waitFor({ state: 'visible' });
  await p.locator('#action-counts', { hasText: /1 completed/ }).waitFor(); // the nurse's, done above
});

test('a tab whose cookie now belongs to another user stops showing the first one', async () => {
  // review: tab A kept showing the officer's data while its cookie became the nurse's
  const x = await browserUser('officer');
  await signIn(x);
  await x.page.locator('#feed-status', { hasText: 'live' }).waitFor({ timeout: 30000 });
  const tab = await x.context.newPage();
  tab.setDefaultTimeout(TIMEOUT);
  await tab.goto(cfg.url + '/');
  await tab.locator('#whoami', { hasText: x.user.display_name }).waitFor();
  await tab.click('button#sign-out');
  await tab.locator('form#sign-in').waitFor({ state: 'visible' });
  await tab.fill('#username', cfg.users.nurse.username);
  await tab.fill('#password', cfg.users.nurse.password);
  await tab.click('form#sign-in button[type=submit]');
  await tab.locator('#whoami', { hasText: cfg.users.nurse.display_name }).waitFor();
  // the first tab's stream ended with the officer's session; when it reconnects it must not
  // go on as the officer: it shows the nurse, or the sign-in form if it looked too early
  await x.page.waitForFunction((officer) => {
    const who = document.querySelector('#whoami').textContent;
    return !document.querySelector('#signed-out').hidden || (who !== '' && !who.includes(officer));
  }, x.user.display_name, { timeout: 30000 });
  await tab.close();
  await x.context.close();
});

test('a sign-out the server does not answer says so, and the page stays signed in', async () => {
  // review: it said "You have signed out." and reloaded, while the cookie still worked
  const p = officer.page;
  await p.route('**/v1/sessions/current', (route) => route.fulfill({
    status: 503, contentType: 'application/problem+json',
    body: JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503,
      detail: 'the database is unavailable; try again shortly' }),
  }));
  await p.click('button#sign-out');
  await p.locator('#app-notice', { hasText: /Sign-out failed/ }).waitFor();
  check(await p.locator('#app').isVisible(), 'the page left the signed-in view');
  check(await p.locator('button#sign-out').isEnabled(), 'the Sign out button stayed disabled');
  await p.unroute('**/v1/sessions/current');
  const status = await p.evaluate(async () => (await fetch('/v1/me')).status);
  check(status === 200, `still signed in, GET /v1/me: ${status}`);
});

test('signing out returns to the sign-in form and the cookie no longer works', async () => {
  await officer.page.click('button#sign-out');
  await officer.page.locator('form#sign-in').waitFor({ state: 'visible' });
  const status = await officer.page.evaluate(async () => (await fetch('/v1/me')).status);
  check(status === 401, `GET /v1/me after sign-out: ${status}`);
});

test('no console errors and no CSP violations anywhere', async () => {
  for (const u of [officer, nurse, manager, ...extra]) {
    for (const v of await cspOf(u))
      problems.push(`${u.name}: CSP violation: ${v}`);
  }
  check(problems.length === 0, problems.join('\n'));
});

for (const t of tests) {
  step = t.name;
  const started = Date.now();
  try {
    await t.fn();
    console.log(`ok   ${t.name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${t.name}\n     ${String(e.message || e).split('\n').join('\n     ')}`);
    for (const u of [officer, nurse, manager])
      await shot(u, `failed-${tests.indexOf(t) + 1}-${u.name}`).catch(() => {});
    if (problems.length)
      console.log(`     console/CSP so far:\n     ${problems.join('\n     ')}`);
  }
}
await browser.close();
console.log(`${tests.length - failures}/${tests.length} browser tests passed; screenshots in ${out}`);
process.exit(failures === 0 ? 0 : 1);
