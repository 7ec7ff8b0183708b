// The devices page: every device as a table row on wide screens and a tile on a phone (one markup,
// style.css switches the layout), with its readings in words and units, switches and sliders that act
// in place, search, sort, filters and a count. Kept current by the live stream, one row at a time.
import { label, reading, serviceLabel } from '/shared/characteristic-display.js';
import { devicePath, post } from '../lib/api.js';
import { badge, h, keepFocus } from '../lib/dom.js';
import { ago, serviceKey } from '../lib/format.js';
import { attempt, messageLine } from '../lib/inline.js';
import { live } from '../lib/live.js';
import { control } from './controls.js';

const STATE_ORDER = { online: 0, sleeping: 1, offline: 2 };
const SORTS = {
  name: (a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id),
  state: (a, b) => (STATE_ORDER[a.state] ?? 3) - (STATE_ORDER[b.state] ?? 3) || SORTS.name(a, b),
  lastSeen: (a, b) => b.lastSeen - a.lastSeen || SORTS.name(a, b),
};

/** Names shared by several devices: those rows show the end of the id too. */
const sharedNames = (devices) => {
  const count = new Map();
  for (const d of devices) count.set(d.name, (count.get(d.name) ?? 0) + 1);
  return new Set([...count].filter(([, n]) => n > 1).map(([name]) => name));
};
const idTail = (id) => (id.length > 8 ? `…${id.slice(-6)}` : id);

/** How long a refused action's message stays by its row when the user does nothing more there. */
const ERROR_MS = 10_000;
/** "Last seen" is recounted this often, by one timer for the whole page (paused while the tab is hidden). */
const TICK_MS = 1000;

export function devicesPage(main) {
  const search = h('input', { type: 'search', id: 'device-search', placeholder: 'Search name or id', 'aria-label': 'Search devices' });
  const sort = h(
    'select',
    { id: 'device-sort', 'aria-label': 'Sort by' },
    h('option', { value: 'name' }, 'Sort: name'),
    h('option', { value: 'state' }, 'Sort: state'),
    h('option', { value: 'lastSeen' }, 'Sort: last seen'),
  );
  const stateFilter = h(
    'select',
    { id: 'device-state', 'aria-label': 'Filter by state' },
    h('option', { value: '' }, 'All states'),
    ...['online', 'sleeping', 'offline'].map((s) => h('option', { value: s }, s[0].toUpperCase() + s.slice(1))),
  );
  const serviceFilter = h('select', { id: 'device-service', 'aria-label': 'Filter by service type' });
  const count = h('p', { id: 'device-count', class: 'muted', role: 'status', 'aria-live': 'polite' });
  const body = h('tbody');
  /** Row elements by device id, to update one device without redrawing the rest. */
  const rows = new Map();
  /** Each device's name at the last full drawing: a changed name may change which rows need the id tail. */
  const names = new Map();
  let shared = new Set();
  /** A refused action's message per device: kept through redraws until the user acts in that row again or ERROR_MS pass. */
  const errors = new Map();
  /** Rows not redrawn because the user was in them: redrawn once the focus leaves. */
  const stale = new Set();
  const makeRow = (d) => row(d, shared.has(d.name), errors, refresh);
  /** Draws one device's row again (its error kept, the focus given back), if it is on the page. */
  const refresh = (id) => {
    const old = rows.get(id);
    const d = live.devices.get(id);
    if (!old || !d || !old.isConnected) return;
    keepFocus(body, () => {
      const fresh = makeRow(d);
      rows.set(id, fresh);
      old.replaceWith(fresh);
    });
  };

  const matches = (d) => {
    const q = search.value.trim().toLowerCase();
    if (q && !d.name.toLowerCase().includes(q) && !d.id.toLowerCase().includes(q)) return false;
    if (stateFilter.value && d.state !== stateFilter.value) return false;
    if (serviceFilter.value && !d.services.some((s) => s.service === serviceFilter.value)) return false;
    return true;
  };

  const fillServices = () => {
    const types = [...new Set([...live.devices.values()].flatMap((d) => d.services.map((s) => s.service)))].sort();
    const chosen = serviceFilter.value;
    serviceFilter.replaceChildren(
      h('option', { value: '' }, 'All types'),
      ...types.map((t) => h('option', { value: t, selected: t === chosen }, serviceLabel(t))),
    );
  };

  const render = () => {
    const all = [...live.devices.values()];
    shared = sharedNames(all);
    names.clear();
    for (const d of all) names.set(d.id, d.name);
    const shown = all.filter(matches).sort(SORTS[sort.value] ?? SORTS.name);
    rows.clear();
    body.replaceChildren(...shown.map((d) => rows.set(d.id, makeRow(d)).get(d.id)));
    if (all.length === 0)
      body.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No devices yet: flash one, or run `npx mqttkit simulate --devices 5`.')));
    else if (shown.length === 0) body.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No device matches the search and filters.')));
    count.textContent = shown.length === all.length ? `${all.length} device${all.length === 1 ? '' : 's'}` : `${shown.length} of ${all.length} devices`;
  };

  // A burst of changes (1,000 devices reporting) is drawn once per frame.
  let pending = null;
  let full = false;
  const redraw = () => {
    pending = null;
    if (full) {
      full = false;
      fillServices();
      keepFocus(body, render);
    }
  };
  const later = () => (pending ??= requestAnimationFrame(redraw));

  for (const el of [search, sort, stateFilter, serviceFilter]) el.addEventListener('input', render);
  fillServices();
  render();
  // One timer for the page: "last seen" counts up between reports, and old messages go.
  let ticker = null;
  const tick = () => {
    if (!body.isConnected) return stop();
    const now = Date.now();
    for (const [id, e] of errors) if (now - e.at >= ERROR_MS) errors.delete(id) && rows.get(id)?.message.clear();
    for (const [id, tr] of rows) {
      const d = live.devices.get(id);
      const text = d ? ago(d.lastSeen) : '';
      if (d && tr.seen.textContent !== text) tr.seen.textContent = text;
    }
  };
  const run = () => {
    clearInterval(ticker);
    ticker = document.hidden ? null : setInterval(tick, TICK_MS);
    if (ticker) tick();
  };
  const stop = () => {
    clearInterval(ticker);
    ticker = null;
    document.removeEventListener('visibilitychange', run);
  };
  // A row left alone while the user was in it is brought up to date when the focus moves on.
  body.addEventListener('focusout', () =>
    queueMicrotask(() => {
      for (const id of stale) {
        const old = rows.get(id);
        const d = live.devices.get(id);
        if (old?.contains(document.activeElement)) continue;
        stale.delete(id);
        if (!old || !d) continue;
        const fresh = makeRow(d);
        rows.set(id, fresh);
        old.replaceWith(fresh);
      }
    }),
  );
  const head = h('thead', {}, h('tr', {}, ...['Device', 'State', 'Readings and controls', 'Last seen'].map((t) => h('th', { scope: 'col' }, t))));
  main.replaceChildren(
    h('h1', {}, 'Devices'),
    h('div', { class: 'device-tools' }, search, sort, stateFilter, serviceFilter),
    count,
    h('div', { class: 'table-wrap' }, h('table', { id: 'devices', class: 'device-list' }, head, body)),
  );
  document.addEventListener('visibilitychange', run);
  run();

  return (kind, id) => {
    if (kind !== 'device' && kind !== 'removed') return;
    const d = live.devices.get(id);
    const old = rows.get(id);
    const sameName = kind === 'device' && d && names.get(id) === d.name;
    // Known, same name, still filtered out: nothing on the page changes (the count neither).
    if (sameName && !old && !matches(d)) return;
    // Same name, still shown: swap the one row, the focus given back. A slider being dragged or a list
    // open in it is left alone until the focus moves on. The order is kept until the next full drawing,
    // so rows do not jump under the user's finger.
    if (sameName && old && matches(d)) {
      if (old.contains(document.activeElement) && document.activeElement.matches('input[type="range"], select')) return void stale.add(id);
      refresh(id);
      return;
    }
    full = true;
    later();
  };
}

/** One device: a row in the table, a tile on a phone. */
function row(d, nameShared, errors, refresh) {
  const message = messageLine({ 'data-error-for': d.id }, 'span');
  const kept = errors.get(d.id);
  if (kept) message.error(kept.text);
  const set = (s, c) => async (value) => {
    errors.delete(d.id);
    const ok = await attempt(message, () => post(devicePath(d.id, '/set'), { service: s.service, index: s.index, characteristic: c.name, value }));
    if (ok) return;
    // Kept by the page, and the row drawn again: it shows the value the device has, not the refused one.
    errors.set(d.id, { text: message.el.textContent, at: Date.now() });
    refresh(d.id);
  };
  const items = d.services.flatMap((s) =>
    s.characteristics
      .filter((c) => c.value !== null || c.writable)
      .map((c) =>
        c.writable && (c.format === 'bool' || (c.minValue !== null && c.maxValue !== null && c.format !== 'string'))
          ? h(
              'span',
              { class: 'item', 'data-value': `${serviceKey(s)}/${c.name}` },
              h('span', { class: 'item-label' }, label(c)),
              control(s, c, set(s, c), d.id),
            )
          : h('span', { class: 'item reading', 'data-value': `${serviceKey(s)}/${c.name}` }, reading(c, c.value)),
      ),
  );
  const seen = h('td', { class: 'muted device-seen' }, ago(d.lastSeen));
  const tr = h(
    'tr',
    { 'data-device': d.id, 'data-shared': nameShared },
    h(
      'td',
      { class: 'device-name' },
      h('a', { href: `#/device/${encodeURIComponent(d.id)}` }, d.name),
      nameShared ? h('span', { class: 'muted id-tail', title: d.id }, idTail(d.id)) : null,
    ),
    h('td', { class: 'device-state' }, badge(d.state)),
    h('td', { class: 'values' }, h('div', { class: 'values-list' }, items), message.el),
    seen,
  );
  // The page's timer updates these in place.
  return Object.assign(tr, { seen, message });
}
