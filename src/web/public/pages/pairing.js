// Pairing with the Home app: the setup code and each bridge's QR code; with --matter, the Matter
// pairing code and QR beside it, the controllers (fabrics) that added the bridge and removing one.
import { api, del } from '../lib/api.js';
import { h } from '../lib/dom.js';
import { attempt, confirmInline, messageLine } from '../lib/inline.js';

export async function pairingPage(main) {
  // The Matter part never keeps the HomeKit code from showing (it answers 503 while it restarts).
  const [pairing, matter] = await Promise.all([api('/api/pairing'), api('/api/matter').catch((error) => ({ enabled: false, error: error.message }))]);
  main.replaceChildren(
    h('h1', {}, 'Pair with the Home app'),
    h('p', {}, 'In the Home app: Add Accessory, then scan the code below, or enter the setup code.'),
    h('p', { class: 'code', id: 'setup-code' }, pairing.setupCode),
    ...pairing.bridges.map((b) => {
      const qr = h('div', { class: 'qr', 'data-setup-uri': b.setupURI || '', role: 'img', 'aria-label': `QR code to pair ${b.name}` });
      // The hub's own QR library made this SVG from the setup URI (no user input in it).
      if (b.qrSvg) qr.innerHTML = b.qrSvg;
      const status = b.paired ? h('span', { class: 'badge online' }, 'paired') : h('span', { class: 'badge sleeping' }, 'not paired');
      return h(
        'div',
        { class: 'card' },
        h('h2', {}, b.name, ' ', status),
        h('p', { class: 'muted' }, `${b.accessories} accessories · HAP port ${b.port} · HAP id ${b.username}`),
        qr,
      );
    }),
    ...(matter.enabled ? matterSection(matter, () => pairingPage(main)) : []),
    ...(matter.error ? [h('p', { class: 'notice error', id: 'matter-error' }, `Matter: ${matter.error}`)] : []),
  );
}

/** The Matter bridge (docs/matter.md): pairing code, QR, fabrics with a confirmed removal. */
function matterSection(matter, reload) {
  const qr = h('div', { class: 'qr', id: 'matter-qr', 'data-qr-payload': matter.qrPayload, role: 'img', 'aria-label': 'QR code to add the Matter bridge' });
  // The hub's own QR library made this SVG from the MT: payload (no user input in it).
  qr.innerHTML = matter.qrSvg;
  const status = matter.commissioned ? h('span', { class: 'badge online' }, 'commissioned') : h('span', { class: 'badge sleeping' }, 'not commissioned');
  const pageMessage = messageLine({ id: 'matter-message' });
  const row = (f) => {
    const ask = h('span', { class: 'ask' });
    const line = messageLine({ 'data-fabric-message': String(f.fabricIndex) }, 'span');
    const button = h(
      'button',
      {
        type: 'button',
        'data-remove-fabric': String(f.fabricIndex),
        onclick: async () => {
          if (!(await confirmInline(ask, `Remove ${f.label || `fabric ${f.fabricIndex}`}? That controller loses the bridge.`, 'Remove'))) return;
          if (await attempt(line, () => del(`/api/matter/fabrics/${f.fabricIndex}`))) await attempt(pageMessage, reload);
        },
      },
      'Remove',
    );
    return h(
      'tr',
      {},
      h('td', {}, f.label || '(no label)'),
      h('td', {}, `0x${f.vendorId.toString(16).toUpperCase().padStart(4, '0')}`),
      h('td', {}, String(f.fabricIndex)),
      h('td', {}, button, ask, line.el),
    );
  };
  return [
    h('h1', {}, 'Matter (Google Home, Alexa, SmartThings, Home Assistant, Apple Home)'),
    h('p', {}, 'In your controller: add a Matter device, then scan the code below, or enter the pairing code.'),
    h('p', { class: 'code', id: 'matter-code' }, matter.manualCode),
    h(
      'div',
      { class: 'card' },
      h('h2', {}, 'Matter bridge ', status),
      h('p', { class: 'muted' }, `${matter.devices} devices · UDP port ${matter.port} · ${matter.qrPayload}`),
      qr,
      h(
        'table',
        { id: 'matter-fabrics' },
        h('caption', {}, 'Controllers (fabrics)'),
        h('thead', {}, h('tr', {}, h('th', {}, 'Label'), h('th', {}, 'Vendor'), h('th', {}, 'Fabric'), h('th', {}, ''))),
        h(
          'tbody',
          {},
          ...(matter.fabrics.length === 0
            ? [h('tr', {}, h('td', { colspan: '4', class: 'muted' }, 'No controller has added the bridge yet.'))]
            : matter.fabrics.map(row)),
        ),
      ),
      pageMessage.el,
    ),
  ];
}
