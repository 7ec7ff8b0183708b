// The mqttkit dashboard: plain ES modules, no build step. Hash routes; live data from /api/events.
const main = document.getElementById('main');
const state = { devices: new Map(), jobs: [], events: null, user: null };

// ---- helpers -----------------------------------------------------------------------------------
const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false && v != null) el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
};
async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { 'content-type': 'application/json', ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 && !path.startsWith('/api/login') && !path.startsWith('/api/setup')) {
    location.hash = '#/login';
    throw new Error(body.error || 'log in first');
  }
  if (!response.ok) throw new Error(body.error || `${response.status}`);
  return body;
}
const post = (path, body) => api(path, { method: 'POST', body: JSON.stringify(body ?? {}) });
const badge = (s) => h('span', { class: `badge ${s}`, 'data-state': s }, s);
const ago = (t) => {
  const s = Math.round((Date.now() - t) / 1000);
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : s < 86400 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86400)}d ago`;
};
const show = (value) => (value === true ? 'on' : value === false ? 'off' : value ?? '–');
const fileToBase64 = (file) =>
  new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',')[1] || '');
    reader.onerror = reject;
    reader.readAsDataURL(file);
  });

// ---- live events -------------------------------------------------------------------------------
function connectEvents() {
  if (state.events && state.events.readyState !== EventSource.CLOSED) return;
  state.events = new EventSource('/api/events');
  // The browser retries a dropped stream by itself, except after an error status: then we do.
  state.events.addEventListener('error', () => {
    if (state.events.readyState === EventSource.CLOSED) setTimeout(connectEvents, 2000);
  });
  state.events.addEventListener('device', (e) => {
    const d = JSON.parse(e.data);
    state.devices.set(d.id, d);
    refresh('device', d.id);
  });
  state.events.addEventListener('removed', (e) => {
    state.devices.delete(JSON.parse(e.data).id);
    refresh('device');
  });
  state.events.addEventListener('jobs', (e) => {
    state.jobs = JSON.parse(e.data);
    refresh('jobs');
  });
}
let current = { route: '', update: null };
function refresh(kind, id) {
  if (current.update) current.update(kind, id);
}

// ---- pages -------------------------------------------------------------------------------------
async function loginPage() {
  const session = await api('/api/session');
  const setup = session.setupNeeded;
  const error = h('p', { class: 'error', role: 'alert' });
  const username = h('input', { type: 'text', id: 'username', autocomplete: 'username', value: setup ? 'admin' : '' });
  const password = h('input', { type: 'password', id: 'password', autocomplete: setup ? 'new-password' : 'current-password' });
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await post(setup ? '/api/setup' : '/api/login', { username: username.value, password: password.value });
          location.hash = '#/devices';
        } catch (err) {
          error.textContent = err.message;
        }
      },
    },
    h('h1', {}, setup ? 'Create the admin account' : 'Log in'),
    setup ? h('p', { class: 'muted' }, 'There is no default password: choose one (at least 10 characters).') : null,
    h('label', { for: 'username' }, 'Username'),
    username,
    h('label', { for: 'password' }, 'Password'),
    password,
    h('p', {}, h('button', { type: 'submit', id: 'submit' }, setup ? 'Create account' : 'Log in')),
    error,
  );
  main.replaceChildren(form);
}

function devicesPage() {
  const body = h('tbody');
  const render = () => {
    const rows = [...state.devices.values()].sort((a, b) => a.name.localeCompare(b.name));
    body.replaceChildren(
      ...rows.map((d) =>
        h(
          'tr',
          { 'data-device': d.id },
          h('td', {}, h('a', { href: `#/device/${encodeURIComponent(d.id)}` }, d.name)),
          h('td', { class: 'muted' }, d.id),
          h('td', {}, badge(d.state)),
          h('td', { class: 'values' }, d.services.flatMap((s) => s.characteristics.filter((c) => c.value !== null).map((c) => h('span', { 'data-value': `${s.service}${s.index ? '/' + s.index : ''}/${c.name}` }, `${c.name} ${show(c.value)}${c.unit === 'celsius' ? '°' : c.unit === 'percentage' ? '%' : ''}`)))),
          h('td', { class: 'muted' }, ago(d.lastSeen)),
        ),
      ),
    );
    if (rows.length === 0) body.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No devices yet: flash one, or run `npx mqttkit simulate --devices 5`.')));
  };
  render();
  main.replaceChildren(h('h1', {}, 'Devices'), h('div', { class: 'table-wrap' }, h('table', { id: 'devices' }, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Id'), h('th', {}, 'State'), h('th', {}, 'Values'), h('th', {}, 'Last seen'))), body)));
  return (kind) => kind === 'device' && render();
}

function control(device, service, c) {
  const target = { service: service.service, index: service.index, characteristic: c.name };
  const set = async (value) => {
    try {
      await post(`/api/devices/${encodeURIComponent(device.id)}/set`, { ...target, value });
    } catch (err) {
      alert(err.message);
    }
  };
  const id = `ctl-${service.service}-${service.index}-${c.name}`;
  if (!c.writable) return h('strong', { 'data-value': c.name }, `${show(c.value)}${c.unit ? ' ' + c.unit : ''}`);
  if (c.format === 'bool') return h('input', { type: 'checkbox', id, role: 'switch', checked: c.value === true, onchange: (e) => set(e.target.checked) });
  if (c.validValues && c.validValues.length) return h('select', { id, onchange: (e) => set(Number(e.target.value)) }, c.validValues.map((v) => h('option', { value: v, selected: v === c.value }, v)));
  if (c.minValue !== null && c.maxValue !== null && c.format !== 'string')
    return h('input', { type: 'range', id, min: c.minValue, max: c.maxValue, step: c.minStep ?? 1, value: c.value ?? c.minValue, onchange: (e) => set(Number(e.target.value)) });
  return h('input', { type: 'text', id, value: c.value ?? '', onchange: (e) => set(e.target.value) });
}

async function devicePage(id) {
  const detail = await api(`/api/devices/${encodeURIComponent(id)}`);
  state.devices.set(id, detail);
  const services = h('div', { class: 'grid' });
  const meta = h('dl');
  const log = h('pre', { class: 'log', id: 'log' }, 'No log lines yet (devices that answer commands log here).\n');
  const charts = h('div', { class: 'chart' });
  let lastLog = 0;
  const render = () => {
    const d = state.devices.get(id);
    if (!d) {
      main.replaceChildren(h('p', {}, `Device ${id} was removed.`));
      return;
    }
    title.replaceChildren(d.name, ' ', badge(d.state));
    meta.replaceChildren(
      ...[['Id', d.id], ['Model', d.meta.model], ['Manufacturer', d.meta.manufacturer], ['App version (HomeKit)', d.app], ['Firmware (runtime)', d.firmware], ['Address', d.address], ['Last seen', new Date(d.lastSeen).toLocaleString()], ['Last reboot', d.lastReboot], ['Last exception', d.lastException]]
        .filter(([, v]) => v)
        .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    );
    services.replaceChildren(
      ...d.services.map((s) =>
        h('div', { class: 'card', 'data-service': `${s.service}${s.index ? '/' + s.index : ''}` }, h('h2', {}, s.service, s.index ? ` ${s.index}` : ''), ...s.characteristics.map((c) => h('div', { class: 'control' }, h('span', { class: 'name' }, c.name), control(d, s, c)))),
      ),
    );
  };
  const title = h('h1');
  const command = h('input', { type: 'text', placeholder: 'stats, getversion, msg_exception…', id: 'command' });
  const answer = h('pre', { class: 'log', id: 'answer', hidden: true });
  const jobs = h('ul', {}, (detail.jobs || []).map((j) => h('li', {}, `#${j.id} ${j.kind} ${j.state}${j.message ? ': ' + j.message : ''}`)));
  main.replaceChildren(
    title,
    h('div', { class: 'card' }, meta),
    services,
    h('h2', {}, 'History'),
    charts,
    h('h2', {}, 'Log'),
    log,
    h('form', { class: 'control', onsubmit: async (e) => {
      e.preventDefault();
      answer.hidden = false;
      answer.textContent = '…';
      try { answer.textContent = (await post(`/api/devices/${encodeURIComponent(id)}/command`, { command: command.value })).answer; } catch (err) { answer.textContent = err.message; }
    } }, command, h('button', { type: 'submit' }, 'Send command')),
    answer,
    h('h2', {}, 'Updates'),
    jobs,
    h('p', {}, h('button', { class: 'danger', id: 'remove', onclick: async () => {
      if (!confirm(`Remove ${id}? Its HomeKit accessory and its account go too.`)) return;
      await api(`/api/devices/${encodeURIComponent(id)}`, { method: 'DELETE' });
      location.hash = '#/devices';
    } }, 'Remove device')),
  );
  render();
  await drawCharts(detail, charts);
  const poll = async () => {
    if (!document.body.contains(log)) return;
    const lines = await api(`/api/devices/${encodeURIComponent(id)}/logs?after=${lastLog}`).catch(() => []);
    if (lastLog === 0 && lines.length > 0) log.textContent = '';
    for (const line of lines) {
      log.textContent += `${new Date(line.at).toLocaleTimeString()} ${line.text}\n`;
      lastLog = line.id;
    }
    setTimeout(poll, 2000);
  };
  poll();
  return (kind, changed) => kind === 'device' && (changed === undefined || changed === id) && render();
}

async function drawCharts(device, container) {
  const numeric = device.services.flatMap((s) => s.characteristics.filter((c) => typeof c.value === 'number' || typeof c.value === 'boolean').map((c) => ({ s, c })));
  for (const { s, c } of numeric) {
    const q = new URLSearchParams({ device: device.id, service: s.service, index: s.index, characteristic: c.name, points: 300 });
    const { points } = await api(`/api/history?${q}`);
    const box = h('div', { class: 'card', 'data-chart': `${s.service}/${c.name}` }, h('strong', {}, `${s.service}${s.index ? ' ' + s.index : ''} · ${c.name}`));
    container.append(box);
    if (points.length < 2 || !window.uPlot) {
      box.append(h('p', { class: 'muted' }, 'Not enough history yet.'));
      continue;
    }
    const data = [points.map((p) => p.at / 1000), points.map((p) => p.value)];
    new window.uPlot({ width: Math.min(container.clientWidth || 600, 900) - 40, height: 180, series: [{}, { label: c.name, stroke: '#0a66d8', width: 2 }], axes: [{}, {}] }, data, box);
  }
}

async function pairingPage() {
  const pairing = await api('/api/pairing');
  main.replaceChildren(
    h('h1', {}, 'Pair with the Home app'),
    h('p', {}, 'In the Home app: Add Accessory, then scan the code below, or enter the setup code.'),
    h('p', { class: 'code', id: 'setup-code' }, pairing.setupCode),
    ...pairing.bridges.map((b) => {
      const qr = h('div', { class: 'qr', 'data-setup-uri': b.setupURI || '' });
      if (b.qrSvg) qr.innerHTML = b.qrSvg;
      return h('div', { class: 'card' }, h('h2', {}, b.name, ' ', b.paired ? h('span', { class: 'badge online' }, 'paired') : h('span', { class: 'badge sleeping' }, 'not paired')), h('p', { class: 'muted' }, `${b.accessories} accessories · HAP port ${b.port} · HAP id ${b.username}`), qr);
    }),
  );
}

function jobView(job) {
  const p = job.progress;
  const percent = p && p.bytesTotal ? Math.round((100 * p.bytes) / p.bytesTotal) : null;
  const label = job.state === 'succeeded' ? 'done' : job.state;
  return h('li', { 'data-job': job.id, 'data-state': job.state }, `#${job.id} ${job.kind} ${job.device}: `, h('strong', { class: 'job-state' }, label), p && job.state === 'running' ? h('span', {}, ` ${p.step} `, h('progress', { max: 100, value: percent ?? 0 })) : null, job.message ? h('span', { class: 'muted' }, ` ${job.message}`) : null);
}

async function otaPage() {
  state.jobs = await api('/api/ota/jobs');
  const devices = [...state.devices.values()].sort((a, b) => a.id.localeCompare(b.id));
  const select = h('select', { id: 'ota-device', multiple: true, size: Math.min(8, Math.max(3, devices.length)) }, devices.map((d) => h('option', { value: d.id }, `${d.name} (${d.id}, ${d.state})`)));
  const chosen = () => [...select.selectedOptions].map((o) => o.value);
  const files = h('input', { type: 'file', id: 'ota-files', multiple: true });
  const prefix = h('input', { type: 'text', id: 'ota-prefix', placeholder: 'e.g. lib/ (optional)' });
  const firmware = h('input', { type: 'file', id: 'ota-firmware' });
  const error = h('p', { class: 'error' });
  const list = h('ul', { id: 'jobs' });
  const render = () => list.replaceChildren(...state.jobs.map(jobView));
  render();
  main.replaceChildren(
    h('h1', {}, 'Over-the-air updates'),
    h('form', { class: 'card', onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      try {
        const picked = [...files.files];
        if (picked.length === 0) throw new Error('pick one or more files');
        const targets = chosen();
        if (targets.length === 0) throw new Error('pick one or more devices');
        const payload = await Promise.all(picked.map(async (f) => ({ path: prefix.value + f.name, content: await fileToBase64(f) })));
        // One job per device: each is verified on its own; sleeping devices get theirs when they wake.
        for (const device of targets) await post('/api/ota/sync', { device, files: payload });
        state.jobs = await api('/api/ota/jobs');
        render();
      } catch (err) { error.textContent = err.message; }
    } },
      h('label', { for: 'ota-device' }, 'Devices (Ctrl/⌘-click for several)'), select,
      h('label', { for: 'ota-files' }, 'Files (only those that changed are sent; the device reboots and is verified)'), files,
      h('label', { for: 'ota-prefix' }, 'Folder on the device'), prefix,
      h('p', {}, h('button', { type: 'submit', id: 'ota-start' }, 'Start update')), error),
    h('form', { class: 'card', onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      try {
        const image = firmware.files[0];
        if (!image) throw new Error('pick a firmware image');
        const targets = chosen();
        if (targets.length === 0) throw new Error('pick one or more devices');
        if (!confirm(`Write ${image.name} to the spare partition of ${targets.join(', ')} and reboot?`)) return;
        const content = await fileToBase64(image);
        for (const device of targets) await post('/api/ota/firmware', { device, image: content });
        state.jobs = await api('/api/ota/jobs');
        render();
      } catch (err) { error.textContent = err.message; }
    } },
      h('label', { for: 'ota-firmware' }, 'Firmware image (.app.bin): confirmed only if the device comes back on it, else rolled back'), firmware,
      h('p', {}, h('button', { type: 'submit', id: 'ota-firmware-start' }, 'Update firmware'))),
    h('h2', {}, 'Jobs'),
    list,
  );
  return (kind) => kind === 'jobs' && render();
}

async function securityPage() {
  const reg = await api('/api/registration');
  const rows = h('tbody');
  const render = (accounts) =>
    rows.replaceChildren(
      ...accounts.map((a) =>
        h('tr', {}, h('td', {}, a.id), h('td', {}, a.status === 'pending' ? 'waiting for approval' : a.passwordSet ? 'registered' : 'reset'), h('td', { class: 'muted' }, a.address || '–'),
          h('td', {}, a.status === 'pending' ? h('button', { onclick: async () => { await post(`/api/registration/${encodeURIComponent(a.id)}/approve`); render((await api('/api/registration')).accounts); } }, 'Approve') : h('button', { class: 'link', onclick: async () => { if (confirm(`Let ${a.id} register a new password?`)) { await post(`/api/registration/${encodeURIComponent(a.id)}/reset`); render((await api('/api/registration')).accounts); } } }, 'Reset password'))),
      ),
    );
  render(reg.accounts);
  main.replaceChildren(h('h1', {}, 'Security'), h('p', {}, 'Registration policy: ', h('strong', {}, reg.policy), h('span', { class: 'muted' }, ' (set with --registration)')), h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Device'), h('th', {}, 'Account'), h('th', {}, 'Address'), h('th', {}, ''))), rows));
}

// ---- router ------------------------------------------------------------------------------------
async function route() {
  const [, page = 'devices', arg] = location.hash.split('/');
  current.update = null;
  if (page === 'login') {
    document.getElementById('nav').hidden = true;
    return loginPage();
  }
  const session = await api('/api/session');
  if (!session.user) {
    location.hash = '#/login';
    return;
  }
  document.getElementById('nav').hidden = false;
  // A fresh list on every page: the live stream then keeps it current.
  const fresh = await api('/api/devices');
  state.devices = new Map(fresh.map((d) => [d.id, d]));
  connectEvents();
  try {
    const pages = { devices: devicesPage, device: () => devicePage(decodeURIComponent(arg)), pairing: pairingPage, ota: otaPage, security: securityPage };
    current.update = (await (pages[page] || devicesPage)()) || null;
  } catch (err) {
    main.replaceChildren(h('p', { class: 'error' }, err.message));
  }
}
document.getElementById('logout').addEventListener('click', async () => {
  await post('/api/logout');
  state.events?.close();
  state.events = null;
  location.hash = '#/login';
});
window.addEventListener('hashchange', route);
route();
