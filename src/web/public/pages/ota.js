// Over-the-air updates: sync files or write firmware to the devices picked, and follow the jobs live
// (progress, end state), with a Cancel for a job that has not ended.
import { api, post } from '../lib/api.js';
import { h } from '../lib/dom.js';
import { fileToBase64 } from '../lib/format.js';
import { attempt, confirmInline, messageLine } from '../lib/inline.js';
import { live } from '../lib/live.js';

const UNFINISHED = ['queued', 'running'];

export async function otaPage(main) {
  live.jobs = await api('/api/ota/jobs');
  const devices = [...live.devices.values()].sort((a, b) => a.id.localeCompare(b.id));
  const select = h(
    'select',
    { id: 'ota-device', multiple: true, size: Math.min(8, Math.max(3, devices.length)) },
    devices.map((d) => h('option', { value: d.id }, `${d.name} (${d.id}, ${d.state})`)),
  );
  const chosen = () => {
    const targets = [...select.selectedOptions].map((o) => o.value);
    if (targets.length === 0) throw new Error('pick one or more devices');
    return targets;
  };
  const files = h('input', { type: 'file', id: 'ota-files', multiple: true });
  const prefix = h('input', { type: 'text', id: 'ota-prefix', placeholder: 'e.g. lib/ (optional)' });
  const firmware = h('input', { type: 'file', id: 'ota-firmware' });
  const syncMessage = messageLine({ id: 'ota-message' });
  const firmwareMessage = messageLine({ id: 'ota-firmware-message' });
  const firmwareAsk = h('span', { class: 'ask' });
  const list = h('ul', { id: 'jobs' });
  const actions = new Map(); // job id → its Cancel button and message, kept while the list redraws
  const render = () => list.replaceChildren(...live.jobs.map((job) => jobView(job, actionsFor(actions, job))));
  const reload = async () => {
    live.jobs = await api('/api/ota/jobs');
    render();
  };
  render();

  const syncForm = h(
    'form',
    {
      class: 'card',
      onsubmit: async (e) => {
        e.preventDefault();
        const jobs = await attempt(syncMessage, async () => {
          const picked = [...files.files];
          if (picked.length === 0) throw new Error('pick one or more files');
          const targets = chosen();
          const payload = await Promise.all(picked.map(async (f) => ({ path: prefix.value + f.name, content: await fileToBase64(f) })));
          // One job per device: each is verified on its own; sleeping devices get theirs when they wake.
          const started = [];
          for (const device of targets) started.push((await post('/api/ota/sync', { device, files: payload })).job);
          await reload();
          return started;
        });
        if (jobs) syncMessage.done(`Started ${jobs.map((j) => `#${j}`).join(', ')}: follow ${jobs.length > 1 ? 'them' : 'it'} below.`);
      },
    },
    h('label', { for: 'ota-device' }, 'Devices (Ctrl/⌘-click for several)'),
    select,
    h('label', { for: 'ota-files' }, 'Files (only those that changed are sent; the device reboots and is verified)'),
    files,
    h('label', { for: 'ota-prefix' }, 'Folder on the device'),
    prefix,
    h('p', {}, h('button', { type: 'submit', id: 'ota-start' }, 'Start update')),
    syncMessage.el,
  );

  const firmwareForm = h(
    'form',
    {
      class: 'card',
      onsubmit: async (e) => {
        e.preventDefault();
        firmwareMessage.clear();
        let image, targets;
        try {
          image = firmware.files[0];
          if (!image) throw new Error('pick a firmware image');
          targets = chosen();
        } catch (error) {
          return firmwareMessage.error(error.message);
        }
        if (!(await confirmInline(firmwareAsk, `Write ${image.name} to the spare partition of ${targets.join(', ')} and reboot?`, 'Yes, update firmware')))
          return;
        const jobs = await attempt(firmwareMessage, async () => {
          const content = await fileToBase64(image);
          const started = [];
          for (const device of targets) started.push((await post('/api/ota/firmware', { device, image: content })).job);
          await reload();
          return started;
        });
        if (jobs) firmwareMessage.done(`Started ${jobs.map((j) => `#${j}`).join(', ')}.`);
      },
    },
    h('label', { for: 'ota-firmware' }, 'Firmware image (.app.bin): confirmed only if the device comes back on it, else rolled back'),
    firmware,
    h('p', {}, h('button', { type: 'submit', id: 'ota-firmware-start' }, 'Update firmware'), firmwareAsk),
    firmwareMessage.el,
  );

  main.replaceChildren(h('h1', {}, 'Over-the-air updates'), syncForm, firmwareForm, h('h2', {}, 'Jobs'), list);
  return (kind) => kind === 'jobs' && render();
}

function jobView(job, actions) {
  const p = job.progress;
  const percent = p?.bytesTotal ? Math.round((100 * p.bytes) / p.bytesTotal) : null;
  const label = job.state === 'succeeded' ? 'done' : job.state;
  return h(
    'li',
    { 'data-job': job.id, 'data-state': job.state },
    `#${job.id} ${job.kind} ${job.device}: `,
    h('strong', { class: 'job-state' }, label),
    p && job.state === 'running'
      ? h('span', {}, ` ${p.step} `, h('progress', { max: 100, value: percent ?? 0, 'aria-label': `job #${job.id} progress` }))
      : null,
    job.message ? h('span', { class: 'muted' }, ` ${job.message}`) : null,
    ' ',
    actions,
  );
}

/** A job's Cancel button (while it runs or waits), its inline confirmation and the answer. */
function actionsFor(map, job) {
  let entry = map.get(job.id);
  if (!entry) {
    const ask = h('span', { class: 'ask' });
    const message = messageLine({ 'data-job-message': job.id }, 'span');
    const button = h(
      'button',
      {
        type: 'button',
        class: 'link cancel',
        'data-cancel': job.id,
        onclick: async () => {
          message.clear();
          button.hidden = true;
          const yes = await confirmInline(ask, `Cancel job #${job.id}?`, 'Yes, cancel it', 'Keep it');
          button.hidden = !UNFINISHED.includes(entry.state);
          if (!yes) return;
          const answer = await attempt(message, () => post(`/api/ota/jobs/${job.id}/cancel`));
          if (answer) message.done(answer.message || `job #${job.id} cancelled`);
        },
      },
      'Cancel',
    );
    entry = { el: h('span', { class: 'job-actions' }, button, ask, message.el), button, state: job.state };
    map.set(job.id, entry);
  }
  entry.state = job.state;
  if (!UNFINISHED.includes(job.state)) entry.button.hidden = true;
  return entry.el;
}
