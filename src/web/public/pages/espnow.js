// ESP-NOW peripherals: which gateway speaks for which battery node, pairing a new one (the one-time
// code is shown once, with a file to copy to the peripheral over USB) and unpairing (docs/device.md,
// "ESP-NOW peripherals"; API: /api/espnow/pairings).
import { api, del, post } from '../lib/api.js';
import { h } from '../lib/dom.js';
import { ago } from '../lib/format.js';
import { attempt, confirmInline, messageLine } from '../lib/inline.js';

export async function espnowPage(main) {
  const pageMessage = messageLine({ id: 'espnow-message' });
  const rows = h('tbody');
  const render = (pairings) =>
    rows.replaceChildren(
      ...(pairings.length === 0 ? [h('tr', {}, h('td', { colspan: '4', class: 'muted' }, 'No ESP-NOW peripherals yet.'))] : pairings.map(row)),
    );
  const reload = async () => render(await api('/api/espnow/pairings'));
  const row = (p) => {
    const ask = h('span', { class: 'ask' });
    const line = messageLine({ 'data-espnow-message': p.peripheral }, 'span');
    const button = h(
      'button',
      {
        type: 'button',
        'data-unpair': p.peripheral,
        onclick: async () => {
          if (!(await confirmInline(ask, `Unpair ${p.peripheral}? ${p.gateway} may no longer speak for it, and ${p.peripheral} leaves HomeKit.`, 'Unpair')))
            return;
          const done = await attempt(line, () => del(`/api/espnow/pairings/${encodeURIComponent(p.peripheral)}`));
          if (done) await attempt(pageMessage, reload);
        },
      },
      'Unpair',
    );
    return h('tr', {}, h('td', {}, p.peripheral), h('td', {}, p.gateway), h('td', {}, ago(p.createdAt)), h('td', {}, button, ask, line.el));
  };

  const gateway = h('input', { type: 'text', id: 'espnow-gateway', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. garden-gw' });
  const peripheral = h('input', { type: 'text', id: 'espnow-peripheral', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. soil-1' });
  const pairMessage = messageLine({ id: 'espnow-pair-message' });
  const shown = h('div', { id: 'espnow-code-host' });
  const form = h(
    'form',
    {
      class: 'card',
      'aria-labelledby': 'espnow-pair-title',
      onsubmit: async (e) => {
        e.preventDefault();
        shown.replaceChildren();
        const made = await attempt(pairMessage, () => post('/api/espnow/pairings', { gateway: gateway.value.trim(), peripheral: peripheral.value.trim() }));
        if (!made) return;
        pairMessage.done(`${made.gateway} pairs ${made.peripheral} for the next ${made.windowS} s.`);
        const file = `${JSON.stringify({ code: made.code })}\n`;
        const link = h(
          'a',
          { id: 'espnow-pair-file', download: 'espnow_pair.json', href: URL.createObjectURL(new Blob([file], { type: 'application/json' })) },
          'espnow_pair.json',
        );
        shown.replaceChildren(
          h(
            'div',
            { class: 'card secret-box' },
            h('p', {}, 'Copy ', link, ' to the peripheral over USB (mpremote cp espnow_pair.json :) and start it. Shown only this once:'),
            h('p', { class: 'secret', id: 'espnow-code' }, file.trim()),
            h(
              'p',
              {},
              'Once it is paired, delete the downloaded file and every other copy of the code: with it, anyone who recorded the pairing can compute the key.',
            ),
          ),
        );
        peripheral.value = '';
        await attempt(pageMessage, reload);
      },
    },
    h('h2', { id: 'espnow-pair-title' }, 'Pair a peripheral'),
    h('label', { for: 'espnow-gateway' }, 'Gateway (an online device running mqttkit.espnow.Gateway)'),
    gateway,
    h('label', { for: 'espnow-peripheral' }, 'Peripheral id (its device id in HomeKit)'),
    peripheral,
    h('p', {}, h('button', { type: 'submit', id: 'espnow-pair' }, 'Open pairing window')),
    pairMessage.el,
    shown,
  );

  main.replaceChildren(
    h('h1', {}, 'ESP-NOW'),
    h('p', {}, 'Battery nodes that speak ESP-NOW reach the hub through a gateway; each is its own device.'),
    pageMessage.el,
    h(
      'div',
      { class: 'table-scroll' },
      h(
        'table',
        { class: 'ops-table', 'aria-labelledby': 'espnow-title' },
        h('caption', { id: 'espnow-title' }, 'Peripherals'),
        h('thead', {}, h('tr', {}, ...['Peripheral', 'Gateway', 'Paired', ''].map((c) => h('th', { scope: 'col' }, c)))),
        rows,
      ),
    ),
    form,
  );
  await reload();
}
