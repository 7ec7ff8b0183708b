// Pairing with the Home app: the setup code and each bridge's QR code.
import { api } from '../lib/api.js';
import { h } from '../lib/dom.js';

export async function pairingPage(main) {
  const pairing = await api('/api/pairing');
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
  );
}
