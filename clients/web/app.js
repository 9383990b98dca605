// The RAISE page (placeholder). Signs in with a session cookie: the server sets an HttpOnly
// cookie and tells the page the CSRF token, which every state-changing request must send as
// X-CSRF-Token. The page never stores the session token.
'use strict';

let csrfToken = null;

function show(text) {
  document.getElementById('status').textContent = text;
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const body = JSON.stringify({
    username: form.username.value,
    password: form.password.value,
    cookie: true,
  });
  const reply = await fetch('/v1/sessions', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body,
    credentials: 'same-origin',
  });
  form.password.value = '';
  if (reply.status !== 201) {
    show('Sign-in failed. Check the username and password.');
    return;
  }
  const session = await reply.json();
  csrfToken = session.csrf_token;
  show('Signed in as ' + session.user.display_name + '.');
}

async function whoAmI() {
  const reply = await fetch('/v1/me', { credentials: 'same-origin' });
  if (reply.status !== 200)
    return;
  const me = await reply.json();
  csrfToken = me.csrf_token || null;
  show('Signed in as ' + me.display_name + '.');
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('sign-in').addEventListener('submit', signIn);
  whoAmI();
});
