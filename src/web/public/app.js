// The mqttkit dashboard: plain ES modules, no build step. This file is the router: hash routes
// (#/devices, #/device/<id>, #/pairing, #/ota, #/security, #/login), one module per page in pages/,
// shared helpers in lib/ (API calls, elements, formats, inline messages, the live event stream).
import { api, post } from './lib/api.js';
import { h } from './lib/dom.js';
import { messageLine } from './lib/inline.js';
import { connect, disconnect, live, onLive } from './lib/live.js';
import { devicePage } from './pages/device.js';
import { devicesPage } from './pages/devices.js';
import { espnowPage } from './pages/espnow.js';
import { loginPage } from './pages/login.js';
import { otaPage } from './pages/ota.js';
import { pairingPage } from './pages/pairing.js';
import { securityPage } from './pages/security.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const pages = { devices: devicesPage, device: devicePage, pairing: pairingPage, ota: otaPage, security: securityPage, espnow: espnowPage };

/** The open page's handler of live changes (a page returns one if it follows the stream). */
let update = null;
onLive((kind, data) => update?.(kind, data));

/** Each navigation gets a number: a slow page that finishes after the user moved on is not shown. */
let visit = 0;

async function route() {
  const here = ++visit;
  const [, page = 'devices', arg] = location.hash.split('/');
  update = null;
  // A visit the user has left changes nothing any more: what a slow page (a long device list) draws or
  // fetches after a quick one would cover it, or put older data under its live updates.
  const current = () => here === visit;
  const stage = {
    current,
    replaceChildren: (...nodes) => {
      if (current()) main.replaceChildren(...nodes);
    },
  };
  try {
    if (page === 'login') {
      nav.hidden = true;
      return await loginPage(stage);
    }
    const session = await api('/api/session');
    if (!current()) return;
    if (!session.user) {
      location.hash = '#/login';
      return;
    }
    nav.hidden = false;
    void showInstance();
    // A fresh list on every page: the live stream then keeps it current.
    const fresh = await api('/api/devices');
    if (!current()) return;
    live.devices = new Map(fresh.map((d) => [d.id, d]));
    connect();
    const show = pages[page] || devicesPage;
    const handler = await show(stage, arg === undefined ? undefined : decodeURIComponent(arg));
    if (here === visit) update = handler || null;
  } catch (error) {
    if (here === visit) main.replaceChildren(h('p', { class: 'notice error', role: 'alert' }, error.message));
  }
}

// [H-3] One of two hubs on a shared database: the header names this instance as the active one.
let instanceShown = false;
async function showInstance() {
  if (instanceShown) return;
  instanceShown = true;
  try {
    const health = await api('/api/health');
    if (health.role !== 'active') return;
    const badge = h(
      'span',
      { id: 'instance', class: 'instance', title: 'the active one of two hubs (the other is its standby)' },
      `active · ${new URL(health.instance).host}`,
    );
    document.querySelector('header .brand').after(badge);
  } catch {
    instanceShown = false; // tried again on the next page
  }
}

// Logging out: a failure shows under the navigation, where the click was.
const logoutMessage = messageLine({ id: 'logout-message' }, 'span');
nav.append(logoutMessage.el);
document.getElementById('logout').addEventListener('click', async () => {
  logoutMessage.clear();
  try {
    await post('/api/logout');
  } catch (error) {
    return logoutMessage.error(error.message);
  }
  disconnect();
  location.hash = '#/login';
});
window.addEventListener('hashchange', route);
void route();
