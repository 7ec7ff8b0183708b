// One device: its facts, a control per characteristic, history charts, its log (live), a command
// line, its OTA jobs, and removal. Every action's result or error shows next to it.
import { label, serviceLabel } from '/shared/characteristic-display.js';
import { api, del, devicePath, post } from '../lib/api.js';
import { badge, h, keepFocus } from '../lib/dom.js';
import { logLine, serviceKey } from '../lib/format.js';
import { attempt, confirmInline, messageLine } from '../lib/inline.js';
import { live, recentLines } from '../lib/live.js';
import { drawCharts } from './charts.js';
import { control, controlId } from './controls.js';

/** Lines the log panel keeps (the store keeps more: `mqttkit logs <id>`). */
const LOG_LINES = 500;

export async function devicePage(main, id) {
  let detail;
  try {
    detail = await api(devicePath(id));
  } catch (error) {
    if (error.status !== 404) throw error;
    main.replaceChildren(
      h('h1', {}, 'Device not found'),
      h('p', { id: 'not-found' }, `The hub knows no device “${id}”. It may have been removed, or the link is mistyped.`),
      h('p', {}, h('a', { href: '#/devices' }, 'Back to all devices')),
    );
    return undefined;
  }
  if (!main.current()) return undefined; // left while it loaded: its data is older than the stream's
  live.devices.set(id, detail);
  const title = h('h1');
  const meta = h('dl');
  const services = h('div', { class: 'grid' });
  const charts = h('div', { class: 'charts' });
  let chartsLive = null;
  const log = devicelog(id, detail.logs || []);

  // A write's error stays by its control while the live stream redraws the cards.
  const writeLines = new Map();
  const writeLine = (key) => writeLines.get(key) ?? writeLines.set(key, messageLine({ 'data-error-for': key })).get(key);
  const set = (s, c) => async (value) => {
    const key = controlId(s, c);
    const ok = await attempt(writeLine(key), () => post(devicePath(id, '/set'), { service: s.service, index: s.index, characteristic: c.name, value }));
    if (!ok) render(); // show the value the device confirmed, not the one refused
  };

  const render = () => {
    const d = live.devices.get(id);
    if (!d) {
      main.replaceChildren(h('p', {}, `Device ${id} was removed.`));
      return;
    }
    title.replaceChildren(d.name, ' ', badge(d.state));
    meta.replaceChildren(
      ...[
        ['Id', d.id],
        ['Model', d.meta.model],
        ['Manufacturer', d.meta.manufacturer],
        ['App version (HomeKit)', d.app],
        ['Firmware (runtime)', d.firmware],
        ['Address', d.address],
        ['Last seen', new Date(d.lastSeen).toLocaleString()],
        ['Last reboot', d.lastReboot],
        ['Last exception', d.lastException],
      ]
        .filter(([, v]) => v)
        .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    );
    // The device reports while someone uses a control: the focus (and any half-typed text) stays.
    keepFocus(services, () =>
      services.replaceChildren(
        ...d.services.map((s) =>
          h(
            'div',
            { class: 'card', 'data-service': serviceKey(s) },
            h('h2', {}, serviceLabel(s.service), s.index ? ` ${s.index}` : ''),
            ...s.characteristics.map((c) =>
              h(
                'div',
                { class: 'control' },
                h('span', { class: 'name' }, label(c)),
                control(s, c, set(s, c)),
                c.writable ? writeLine(controlId(s, c)).el : null,
              ),
            ),
          ),
        ),
      ),
    );
  };

  main.replaceChildren(
    title,
    h('div', { class: 'card' }, meta),
    nameAndNotes(id, detail),
    services,
    h('h2', {}, 'History'),
    charts,
    h('h2', {}, 'Log'),
    log.el,
    commandForm(id),
    h('h2', {}, 'Updates'),
    jobList(detail.jobs || []),
    removal(id),
  );
  render();
  log.scroll();
  // Not awaited: the page follows the live stream while the charts load (each shows its own error).
  drawCharts(detail, charts)
    .then((add) => (chartsLive = add))
    .catch((error) => charts.append(h('p', { class: 'notice error', role: 'alert' }, error.message)));
  return (kind, data) => {
    if (kind === 'log' && data.device === id) log.add([data]);
    else if (kind === 'log-dropped')
      log.note(`… ${data.lines} log lines skipped (devices logged faster than the page shows them; \`mqttkit logs ${id}\` has them all)`);
    else if ((kind === 'device' || kind === 'removed') && data === id) {
      render();
      const d = live.devices.get(id);
      if (d && chartsLive) chartsLive(d);
    }
  };
}

/** The log panel: the lines the hub kept, then each new one from the live stream (no polling). */
function devicelog(id, initial) {
  const el = h('pre', { class: 'log', id: 'log', tabindex: 0, 'aria-live': 'polite', 'aria-label': `Log of ${id}` });
  const lines = [];
  let lastId = 0;
  // The newest line stays in view; once laid out (a panel not yet on the page has no height) too.
  const scroll = () => {
    el.scrollTop = el.scrollHeight;
    requestAnimationFrame(() => (el.scrollTop = el.scrollHeight));
  };
  const draw = () => {
    el.textContent = lines.length ? lines.join('\n') + '\n' : 'No log lines yet (devices that answer commands log here).\n';
    scroll();
  };
  const keep = (text) => {
    lines.push(text);
    if (lines.length > LOG_LINES) lines.splice(0, lines.length - LOG_LINES);
  };
  const add = (batch) => {
    let added = false;
    for (const line of [...batch].sort((a, b) => a.id - b.id)) {
      if (line.id <= lastId) continue; // already shown (from the page's first load or the stream)
      lastId = line.id;
      keep(logLine(line));
      added = true;
    }
    if (added) draw();
  };
  add([...initial, ...recentLines(id)]);
  draw();
  return { el, add, scroll, note: (text) => (keep(text), draw()) };
}

function commandForm(id) {
  const command = h('input', { type: 'text', placeholder: 'stats, getversion, msg_exception…', id: 'command', 'aria-label': 'Command' });
  const answer = h('pre', { class: 'log', id: 'answer', tabindex: 0, hidden: true, 'aria-live': 'polite' });
  const message = messageLine({ id: 'command-message' });
  const form = h(
    'form',
    {
      class: 'control',
      onsubmit: async (e) => {
        e.preventDefault();
        answer.hidden = true;
        const result = await attempt(message, () => {
          message.done('Sent; waiting for the answer…');
          return post(devicePath(id, '/command'), { command: command.value });
        });
        if (!result) return;
        message.clear();
        answer.hidden = false;
        answer.textContent = result.answer;
      },
    },
    command,
    h('button', { type: 'submit' }, 'Send command'),
  );
  return h('div', {}, form, message.el, answer);
}

function jobList(jobs) {
  return h(
    'ul',
    {},
    jobs.map((j) => h('li', {}, `#${j.id} ${j.kind} ${j.state}${j.message ? ': ' + j.message : ''}`)),
  );
}

function removal(id) {
  const ask = h('span', { class: 'ask' });
  const message = messageLine({ id: 'remove-message' });
  const button = h(
    'button',
    {
      class: 'danger',
      id: 'remove',
      onclick: async () => {
        message.clear();
        button.hidden = true;
        const yes = await confirmInline(ask, `Remove ${id}? Its HomeKit accessory and its account go too.`, 'Yes, remove it');
        button.hidden = false;
        if (!yes) return button.focus();
        if (await attempt(message, () => del(devicePath(id)))) location.hash = '#/devices';
      },
    },
    'Remove device',
  );
  return h('div', {}, h('p', {}, button, ask), message.el);
}

/** How long a rename's Undo is offered. */
const UNDO_MS = 10_000;

/** The name (what the dashboard shows and HomeKit offers by default) and the notes the hub keeps. */
function nameAndNotes(id, detail) {
  const name = h('input', { type: 'text', id: 'device-name', value: detail.name, maxlength: 64, 'aria-label': 'Device name' });
  const nameMessage = messageLine({ id: 'name-message' });
  // A rename can be taken back for a while: an Undo button beside its notice (the next stop of the
  // keyboard after Rename), which renames back through the same API, so HomeKit's name follows too.
  const undoHost = h('span', { class: 'undo' });
  let current = detail.name;
  let undoTimer;
  const dropUndo = () => {
    clearTimeout(undoTimer);
    const button = undoHost.firstChild;
    if (button && document.activeElement === button) name.focus();
    undoHost.replaceChildren();
  };
  const rename = async (to, told) => {
    const from = current;
    const answer = await attempt(nameMessage, () => post(devicePath(id, '/name'), { name: to }));
    if (!answer) return false;
    current = answer.name;
    name.value = current;
    nameMessage.done(told(from, current));
    return true;
  };
  const offerUndo = (previous) => {
    dropUndo();
    const button = h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        id: 'rename-undo',
        onclick: async () => {
          dropUndo();
          await rename(previous, (_, to) => `Name back to “${to}”.`);
        },
      },
      'Undo',
    );
    undoHost.replaceChildren(button);
    undoTimer = setTimeout(dropUndo, UNDO_MS);
  };
  const notes = h('textarea', { id: 'device-notes', maxlength: 2000, 'aria-label': 'Notes' }, detail.notes || '');
  const notesMessage = messageLine({ id: 'notes-message' });
  return h(
    'div',
    { class: 'card device-notes' },
    h(
      'form',
      {
        class: 'device-rename',
        onsubmit: async (e) => {
          e.preventDefault();
          const previous = current;
          dropUndo();
          if ((await rename(name.value, (from, to) => `Renamed from “${from}” to “${to}” (HomeKit offers this name to new pairings).`)) && previous !== current)
            offerUndo(previous);
        },
      },
      h('label', { for: 'device-name' }, 'Name'),
      name,
      h('button', { type: 'submit', id: 'rename' }, 'Rename'),
    ),
    h('div', { class: 'rename-notice' }, nameMessage.el, undoHost),
    h('label', { for: 'device-notes' }, 'Notes'),
    notes,
    h(
      'p',
      {},
      h(
        'button',
        {
          type: 'button',
          id: 'save-notes',
          onclick: async () => {
            if (await attempt(notesMessage, () => post(devicePath(id, '/notes'), { notes: notes.value }))) notesMessage.done('Notes saved.');
          },
        },
        'Save notes',
      ),
    ),
    notesMessage.el,
  );
}
