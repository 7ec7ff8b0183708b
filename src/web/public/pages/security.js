// Security: device accounts (add one ahead of time, approve one that waits, let one register a new
// password), API tokens and dashboard accounts. A new secret (device password, token) is shown once,
// in the page, with nothing else to fetch it again: the hub keeps only its hash.
import { api, del, post } from '../lib/api.js';
import { h } from '../lib/dom.js';
import { attempt, confirmInline, messageLine } from '../lib/inline.js';
import { hubLogSince, streamReady } from '../lib/live.js';
import { when } from './ota-format.js';

const POLICIES = {
  open: 'open: an unknown device registers with the password it presents',
  approve: 'approve: an unknown device waits until approved here',
  closed: 'closed: only devices added here (or with mqttkit device add) connect',
};

/** The registration policy, switched for the next connections (until the hub restarts: docs/security.md [S-2]). */
function policyForm(current) {
  const select = h(
    'select',
    { id: 'registration-policy-select' },
    Object.entries(POLICIES).map(([value, label]) => h('option', { value, selected: value === current }, label)),
  );
  const shown = h('strong', { id: 'registration-policy' }, current);
  const message = messageLine({ id: 'registration-policy-message' });
  return h(
    'form',
    {
      class: 'card',
      'aria-labelledby': 'policy-title',
      onsubmit: async (e) => {
        e.preventDefault();
        const answer = await attempt(message, () => post('/api/registration/policy', { policy: select.value }));
        if (!answer) return;
        shown.textContent = answer.policy;
        message.done(`Registration is ${answer.policy} now, ${answer.note}.`);
      },
    },
    h('h2', { id: 'policy-title' }, 'Registration policy: ', shown),
    h('label', { for: 'registration-policy-select' }, 'New devices'),
    select,
    h('p', {}, h('button', { type: 'submit', id: 'registration-policy-apply' }, 'Switch policy')),
    message.el,
  );
}

/** A secret shown once: selectable text and a note that it will not be shown again. */
const secretBox = (id, what, value) =>
  h('div', { class: 'card secret-box', id }, h('p', {}, `${what} (shown only this once: copy it now):`), h('p', { class: 'secret' }, value));

export async function securityPage(main) {
  const reg = await api('/api/registration');
  const hubLog = await hubLogSection();
  const rows = h('tbody');
  const pageMessage = messageLine({ id: 'security-message' });
  const reload = async () => render((await api('/api/registration')).accounts);
  const row = (a) => {
    const message = messageLine({ 'data-account-message': a.id }, 'span');
    const ask = h('span', { class: 'ask' });
    const path = (action) => `/api/registration/${encodeURIComponent(a.id)}/${action}`;
    const action =
      a.status === 'pending'
        ? h(
            'button',
            { type: 'button', onclick: async () => (await attempt(message, () => post(path('approve')))) && (await attempt(pageMessage, reload)) },
            'Approve',
          )
        : h(
            'button',
            {
              type: 'button',
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
      h('td', { 'data-label': 'Device', class: 'nowrap' }, a.id),
      h('td', { 'data-label': 'Account' }, account),
      h('td', { 'data-label': 'Address', class: 'muted' }, a.address || '–'),
      h('td', { 'data-label': 'Actions' }, action, ' ', ask, message.el),
    );
  };
  const render = (accounts) => rows.replaceChildren(...accounts.map(row));
  render(reg.accounts);
  const head = h(
    'thead',
    {},
    h(
      'tr',
      {},
      ['Device', 'Account', 'Address', 'Actions'].map((t) => h('th', { scope: 'col' }, t)),
    ),
  );

  // Add a device ahead of time (policy "closed" needs it; any policy allows it).
  const newId = h('input', { type: 'text', id: 'device-add-id', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. porch-light' });
  const addMessage = messageLine({ id: 'device-add-message' });
  const addShown = h('div', { id: 'device-add-secret-host' });
  const addForm = h(
    'form',
    {
      class: 'card',
      'aria-labelledby': 'device-add-title',
      onsubmit: async (e) => {
        e.preventDefault();
        addShown.replaceChildren();
        const made = await attempt(addMessage, () => post('/api/registration/devices', { id: newId.value.trim() }));
        if (!made) return;
        addMessage.done(`${made.id} added: put this password in its config (username and client id: ${made.id}).`);
        addShown.replaceChildren(secretBox('device-password', `Password of ${made.id}`, made.password));
        newId.value = '';
        await attempt(pageMessage, reload);
      },
    },
    h('h2', { id: 'device-add-title' }, 'Add a device'),
    h('label', { for: 'device-add-id' }, 'Device id (its MQTT username and client id)'),
    newId,
    h('p', {}, h('button', { type: 'submit', id: 'device-add' }, 'Add device')),
    addMessage.el,
    addShown,
  );

  main.replaceChildren(
    h('h1', {}, 'Security'),
    policyForm(reg.policy),
    pageMessage.el,
    h('h2', { id: 'devices-title' }, 'Device accounts'),
    h('table', { class: 'ops-table', 'aria-labelledby': 'devices-title' }, head, rows),
    addForm,
    await tokensSection(),
    await usersSection(),
    hubLog.el,
  );
  // The lines the stream brought while the rest of the page loaded (no handler heard them yet).
  hubLog.catchUp();
  return (kind, data) => {
    if (kind === 'hub-log') hubLog.add(data);
    if (kind === 'hub-log-restarted') void hubLog.load();
  };
}

/** A row of a named thing (a token, an account) with its creation time and a confirmed removal in place. */
function namedRow(item, { kind, verb, question, remove, reload }) {
  const ask = h('span', { class: 'ask' });
  const line = messageLine({ [`data-${kind}-message`]: item.name }, 'span');
  const button = h(
    'button',
    {
      type: 'button',
      class: 'link',
      [kind === 'token' ? 'data-revoke' : `data-remove-${kind}`]: item.name,
      onclick: async () => {
        if (!(await confirmInline(ask, question, `Yes, ${verb.toLowerCase()}`))) return;
        if (await attempt(line, remove)) await reload();
      },
    },
    verb,
  );
  return h(
    'tr',
    { [`data-${kind}`]: item.name },
    h('td', { 'data-label': 'Name', class: 'nowrap' }, item.name),
    h('td', { 'data-label': 'Created' }, when(item.createdAt)),
    h('td', { 'data-label': 'Actions' }, button, ' ', ask, line.el),
  );
}

/** A card holding a table of named things, then its form and messages. */
function namedCard(key, title, rows, ...after) {
  const head = h(
    'thead',
    {},
    h(
      'tr',
      {},
      ['Name', 'Created', 'Actions'].map((t) => h('th', { scope: 'col' }, t)),
    ),
  );
  return h(
    'section',
    { class: 'card', 'aria-labelledby': `${key}-title` },
    h('h2', { id: `${key}-title` }, title),
    h('table', { class: 'ops-table', id: key }, head, rows),
    ...after,
  );
}

/** API tokens for scripts (and Prometheus): made here with the token shown once, revoked in place. */
async function tokensSection() {
  const rows = h('tbody');
  const message = messageLine({ id: 'token-message' });
  const shown = h('div', { id: 'token-secret-host' });
  const render = (tokens) =>
    rows.replaceChildren(
      ...tokens.map((t) =>
        namedRow(t, {
          kind: 'token',
          verb: 'Revoke',
          question: `Revoke ${t.name}? Scripts using it stop working.`,
          remove: () => del(`/api/tokens/${encodeURIComponent(t.name)}`),
          reload: () => reload(),
        }),
      ),
    );
  const reload = async () => render(await api('/api/tokens'));
  await reload();
  const name = h('input', { type: 'text', id: 'token-name', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. prometheus' });
  const form = h(
    'form',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        shown.replaceChildren();
        const made = await attempt(message, () => post('/api/tokens', { name: name.value.trim() }));
        if (!made) return;
        message.done(`Token ${made.name} made: send it as Authorization: Bearer <token>.`);
        shown.replaceChildren(secretBox('token-secret', `Token ${made.name}`, made.token));
        name.value = '';
        await attempt(message, reload);
      },
    },
    h('label', { for: 'token-name' }, 'New token name'),
    name,
    h('p', {}, h('button', { type: 'submit', id: 'token-create' }, 'Make token')),
  );
  return namedCard('tokens', 'API tokens', rows, form, message.el, shown);
}

/** Dashboard accounts: another admin added with a password, one removed (not the one in use, not the last). */
async function usersSection() {
  const rows = h('tbody');
  const message = messageLine({ id: 'user-message' });
  const render = (users) =>
    rows.replaceChildren(
      ...users.map((u) =>
        namedRow(u, {
          kind: 'user',
          verb: 'Remove',
          question: `Remove ${u.name}? Its sessions end.`,
          remove: () => del(`/api/users/${encodeURIComponent(u.name)}`),
          reload: () => reload(),
        }),
      ),
    );
  const reload = async () => render(await api('/api/users'));
  await reload();
  const username = h('input', { type: 'text', id: 'user-name', autocomplete: 'off', spellcheck: 'false' });
  const password = h('input', { type: 'password', id: 'user-password', autocomplete: 'new-password' });
  const form = h(
    'form',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const made = await attempt(message, () => post('/api/users', { username: username.value.trim(), password: password.value }));
        if (!made) return;
        message.done(`${made.user} can log in now.`);
        username.value = '';
        password.value = '';
        await attempt(message, reload);
      },
    },
    h('label', { for: 'user-name' }, 'New account name'),
    username,
    h('label', { for: 'user-password' }, 'Its password (at least 10 characters)'),
    password,
    h('p', {}, h('button', { type: 'submit', id: 'user-add' }, 'Add account')),
  );
  return namedCard('users', 'Dashboard accounts', rows, form, message.el);
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
const KEEP = 500;

/** The hub's own log: the last 500 lines, then each new one from the live stream, filtered by level. */
async function hubLogSection() {
  const level = h(
    'select',
    { id: 'hub-log-level' },
    LEVELS.map((l) => h('option', { value: l, selected: l === 'info' }, `${l} and above`)),
  );
  const view = h('pre', { class: 'log hub-log', id: 'hub-log', tabindex: 0, 'aria-label': 'The hub log', 'aria-live': 'off' });
  const message = messageLine({ id: 'hub-log-message' });
  let lines = [];
  const shown = (line) => LEVELS.indexOf(line.level) >= LEVELS.indexOf(level.value);
  const text = (line) => `${new Date(line.at).toLocaleTimeString()} ${line.level.toUpperCase().padEnd(5)} ${line.text}\n`;
  const draw = () => {
    const atEnd = view.scrollTop + view.clientHeight >= view.scrollHeight - 4;
    view.replaceChildren(...lines.filter(shown).map((l) => h('span', { class: `lvl-${l.level}`, 'data-level': l.level }, text(l))));
    if (atEnd) view.scrollTop = view.scrollHeight;
  };
  /** Lines the stream brought after the last one shown, in order, none twice. */
  const catchUp = () => {
    const last = lines.length ? lines[lines.length - 1].id : 0;
    for (const line of hubLogSince(last)) add(line);
  };
  // Fetched once the stream is open ([A-3] the hub log's cursor): every later line comes on the stream,
  // and the ones it brought meanwhile are taken from it after the fetched ones.
  const load = async () => {
    await streamReady();
    const answer = await attempt(message, () => api('/api/hub-log?level=trace'));
    lines = answer ? answer.lines.slice(-KEEP) : [];
    catchUp();
    draw();
    view.scrollTop = view.scrollHeight;
  };
  level.addEventListener('change', draw);
  await load();
  return {
    load,
    catchUp,
    el: h(
      'section',
      { class: 'card', 'aria-labelledby': 'hub-log-title' },
      h('h2', { id: 'hub-log-title' }, 'Hub log'),
      h('div', { class: 'toolbar' }, h('label', { for: 'hub-log-level' }, 'Show'), level),
      message.el,
      view,
    ),
    add,
  };
  function add(line) {
    if (lines.length && line.id <= lines[lines.length - 1].id) return;
    lines.push(line);
    if (lines.length > KEEP) lines = lines.slice(-KEEP);
    if (!shown(line)) return;
    const atEnd = view.scrollTop + view.clientHeight >= view.scrollHeight - 4;
    view.append(h('span', { class: `lvl-${line.level}`, 'data-level': line.level }, text(line)));
    while (view.childNodes.length > KEEP) view.firstChild.remove();
    if (atEnd) view.scrollTop = view.scrollHeight;
  }
}
