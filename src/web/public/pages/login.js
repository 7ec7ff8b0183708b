// First visit (create the admin account) or log in.
import { api, post } from '../lib/api.js';
import { h } from '../lib/dom.js';
import { attempt, messageLine } from '../lib/inline.js';

export async function loginPage(main) {
  const session = await api('/api/session');
  const setup = session.setupNeeded;
  const message = messageLine();
  const username = h('input', { type: 'text', id: 'username', autocomplete: 'username', value: setup ? 'admin' : '' });
  const password = h('input', { type: 'password', id: 'password', autocomplete: setup ? 'new-password' : 'current-password' });
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (e) => {
        e.preventDefault();
        const ok = await attempt(message, () => post(setup ? '/api/setup' : '/api/login', { username: username.value, password: password.value }));
        if (ok) location.hash = '#/devices';
      },
    },
    h('h1', {}, setup ? 'Create the admin account' : 'Log in'),
    setup ? h('p', { class: 'muted' }, 'There is no default password: choose one (at least 10 characters).') : null,
    h('label', { for: 'username' }, 'Username'),
    username,
    h('label', { for: 'password' }, 'Password'),
    password,
    h('p', {}, h('button', { type: 'submit', id: 'submit' }, setup ? 'Create account' : 'Log in')),
    message.el,
  );
  main.replaceChildren(form);
}
