// Device accounts: approve a device that waits (registration policy "approve"), or let one register a
// new password.
import { api, post } from '../lib/api.js';
import { h } from '../lib/dom.js';
import { attempt, confirmInline, messageLine } from '../lib/inline.js';

export async function securityPage(main) {
  const reg = await api('/api/registration');
  const rows = h('tbody');
  const pageMessage = messageLine({ id: 'security-message' });
  const reload = async () => render((await api('/api/registration')).accounts);
  const row = (a) => {
    const message = messageLine({ 'data-account-message': a.id }, 'span');
    const ask = h('span', { class: 'ask' });
    const path = (action) => `/api/registration/${encodeURIComponent(a.id)}/${action}`;
    const action =
      a.status === 'pending'
        ? h('button', { onclick: async () => (await attempt(message, () => post(path('approve')))) && (await attempt(pageMessage, reload)) }, 'Approve')
        : h(
            'button',
            {
              class: 'link',
              onclick: async () => {
                if (!(await confirmInline(ask, `Let ${a.id} register a new password?`, 'Yes, reset'))) return;
                if (await attempt(message, () => post(path('reset')))) await attempt(pageMessage, reload);
              },
            },
            'Reset password',
          );
    const account = a.status === 'pending' ? 'waiting for approval' : a.passwordSet ? 'registered' : 'reset';
    return h(
      'tr',
      { 'data-account': a.id },
      h('td', {}, a.id),
      h('td', {}, account),
      h('td', { class: 'muted' }, a.address || '–'),
      h('td', {}, action, ' ', ask, message.el),
    );
  };
  const render = (accounts) => rows.replaceChildren(...accounts.map(row));
  render(reg.accounts);
  const head = h('thead', {}, h('tr', {}, h('th', {}, 'Device'), h('th', {}, 'Account'), h('th', {}, 'Address'), h('th', {}, '')));
  main.replaceChildren(
    h('h1', {}, 'Security'),
    h('p', {}, 'Registration policy: ', h('strong', {}, reg.policy), h('span', { class: 'muted' }, ' (set with --registration)')),
    pageMessage.el,
    h('table', {}, head, rows),
  );
}
