// The devices table: every device, its state and values, kept current by the live stream.
import { badge, h } from '../lib/dom.js';
import { ago, serviceKey, show, unitMark } from '../lib/format.js';
import { live } from '../lib/live.js';

const valueSpans = (d) =>
  d.services.flatMap((s) =>
    s.characteristics
      .filter((c) => c.value !== null)
      .map((c) => h('span', { 'data-value': `${serviceKey(s)}/${c.name}` }, `${c.name} ${show(c.value)}${unitMark(c.unit)}`)),
  );

export function devicesPage(main) {
  const body = h('tbody');
  const render = () => {
    const rows = [...live.devices.values()].sort((a, b) => a.name.localeCompare(b.name));
    body.replaceChildren(
      ...rows.map((d) =>
        h(
          'tr',
          { 'data-device': d.id },
          h('td', {}, h('a', { href: `#/device/${encodeURIComponent(d.id)}` }, d.name)),
          h('td', { class: 'muted' }, d.id),
          h('td', {}, badge(d.state)),
          h('td', { class: 'values' }, valueSpans(d)),
          h('td', { class: 'muted' }, ago(d.lastSeen)),
        ),
      ),
    );
    if (rows.length === 0)
      body.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No devices yet: flash one, or run `npx mqttkit simulate --devices 5`.')));
  };
  render();
  const head = h('thead', {}, h('tr', {}, ...['Name', 'Id', 'State', 'Values', 'Last seen'].map((t) => h('th', {}, t))));
  main.replaceChildren(h('h1', {}, 'Devices'), h('div', { class: 'table-wrap' }, h('table', { id: 'devices' }, head, body)));
  return (kind) => (kind === 'device' || kind === 'removed') && render();
}
