// Over-the-air updates: sync files or write firmware to the devices picked, roll files out to many
// devices (canaries first, a few at a time, halt at any moment), and follow every job live in a table:
// bytes, speed and time left while it runs, when it was created, started and finished, Cancel while it
// has not ended, Retry once it failed. Everything moves with the live stream (docs/api.md [A-3]).
import { matchDevices } from '/shared/device-pattern.js';
import { api, post } from '../lib/api.js';
import { h, keepFocus } from '../lib/dom.js';
import { fileToBase64 } from '../lib/format.js';
import { attempt, confirmInline, messageLine } from '../lib/inline.js';
import { live } from '../lib/live.js';
import { bytes, duration, TransferMeter, when } from './ota-format.js';

const UNFINISHED = ['queued', 'running'];
const RETRIABLE = ['failed', 'cancelled', 'rolled-back'];
/** What this tab sent for each job it started (endpoint and body), so Retry can send it again. */
const sent = new Map();
const meter = new TransferMeter();

/** A device that never answered `getversion` cannot be told what to fetch: it is marked, not offered blindly. */
const otaReady = (d) => d.answersCommands === true;

const optionText = (d) => `${d.name === d.id ? d.id : `${d.name} (${d.id})`}, ${d.state}${otaReady(d) ? '' : ', never answered getversion'}`;

/**
 * The devices to pick, kept live from the stream ([A-3]): a device that arrives is added, one removed
 * goes, one whose name, state or getversion answer changed is shown anew. The select itself stays (so
 * it keeps the focus) and so does what was picked; a change that alters no option redraws nothing.
 */
function devicePicker(onChange) {
  const select = h('select', { id: 'ota-device', multiple: true });
  const shown = new Map(); // id → the text and readiness its option shows
  const draw = () => {
    const devices = [...live.devices.values()].sort((a, b) => a.id.localeCompare(b.id));
    const ready = devices.filter(otaReady);
    const silent = devices.filter((d) => !otaReady(d));
    const picked = new Set([...select.selectedOptions].map((o) => o.value));
    const option = (d) => h('option', { value: d.id, 'data-ota': otaReady(d) ? 'ready' : 'no-answer', selected: picked.has(d.id) }, optionText(d));
    select.replaceChildren(
      ...(ready.length ? [h('optgroup', { label: 'Ready for updates' }, ready.map(option))] : []),
      ...(silent.length ? [h('optgroup', { label: 'No getversion answer yet: an update would wait or fail' }, silent.map(option))] : []),
    );
    select.size = Math.min(8, Math.max(3, devices.length + (silent.length ? 1 : 0) + (ready.length ? 1 : 0)));
    shown.clear();
    for (const d of devices) shown.set(d.id, `${otaReady(d)} ${optionText(d)}`);
    onChange();
  };
  draw();
  return {
    select,
    ids: () => [...shown.keys()],
    /** A device changed ('device') or went ('removed'). */
    update(kind, id) {
      const d = live.devices.get(id);
      if (kind === 'removed' ? !shown.has(id) : d && shown.get(id) === `${otaReady(d)} ${optionText(d)}`) return;
      keepFocus(select.parentNode ?? select, draw);
    },
  };
}

export async function otaPage(main) {
  const jobs = await api('/api/ota/jobs');
  if (!main.current()) return undefined; // left while it loaded: its list is older than the stream's
  live.jobs = jobs;
  const pickWarning = h('p', { class: 'notice warn', id: 'ota-pick-warning', hidden: true });
  const warnUnready = () => {
    const unready = [...select.selectedOptions].filter((o) => o.dataset.ota !== 'ready').map((o) => o.value);
    pickWarning.hidden = unready.length === 0;
    pickWarning.textContent = unready.length
      ? `${unready.join(', ')} never answered getversion: the hub cannot tell ${unready.length > 1 ? 'them' : 'it'} to fetch files until ${unready.length > 1 ? 'they run' : 'it runs'} the mqttkit device library.`
      : '';
  };
  // The rollout's match count follows the device list too (set below, once the rollout form exists).
  let devicesChanged = () => {};
  const picker = devicePicker(() => devicesChanged());
  const select = picker.select;
  select.addEventListener('change', warnUnready);
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
  const rows = h('tbody');
  const actions = new Map(); // job id → its buttons and message, kept while the table redraws
  // Live updates come every quarter second while a transfer runs: whoever is on a Cancel button or the
  // rollout's Halt keeps the focus (those elements are reused, only moved), and a half-typed field its text.
  const render = () => {
    keepFocus(rows, () => rows.replaceChildren(...live.jobs.map((job) => jobRow(job, actionsFor(actions, job, select, syncMessage)))));
    rollouts.render();
  };
  const reload = async () => {
    live.jobs = await api('/api/ota/jobs');
    render();
  };
  /** Starts one job and remembers what it sent (for Retry). */
  const start = async (path, body) => {
    const job = (await post(path, body)).job;
    sent.set(job, { path, body });
    return job;
  };

  const syncForm = h(
    'form',
    {
      class: 'card',
      'aria-labelledby': 'ota-sync-title',
      onsubmit: async (e) => {
        e.preventDefault();
        const jobs = await attempt(syncMessage, async () => {
          const picked = [...files.files];
          if (picked.length === 0) throw new Error('pick one or more files');
          const targets = chosen();
          const payload = await Promise.all(picked.map(async (f) => ({ path: prefix.value + f.name, content: await fileToBase64(f) })));
          // One job per device: each is verified on its own; sleeping devices get theirs when they wake.
          const started = [];
          for (const device of targets) started.push(await start('/api/ota/sync', { device, files: payload }));
          await reload();
          return started;
        });
        if (jobs) syncMessage.done(`Started ${jobs.map((j) => `#${j}`).join(', ')}: follow ${jobs.length > 1 ? 'them' : 'it'} below.`);
      },
    },
    h('h2', { id: 'ota-sync-title' }, 'Update files'),
    h('label', { for: 'ota-device' }, 'Devices (Ctrl/⌘-click or Shift-arrows for several)'),
    select,
    pickWarning,
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
      'aria-labelledby': 'ota-firmware-title',
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
          for (const device of targets) started.push(await start('/api/ota/firmware', { device, image: content }));
          await reload();
          return started;
        });
        if (jobs) firmwareMessage.done(`Started ${jobs.map((j) => `#${j}`).join(', ')}.`);
      },
    },
    h('h2', { id: 'ota-firmware-title' }, 'Update firmware'),
    h('label', { for: 'ota-firmware' }, 'Firmware image (.app.bin) for the devices picked above: kept only if the device comes back on it, else rolled back'),
    firmware,
    h('p', {}, h('button', { type: 'submit', id: 'ota-firmware-start' }, 'Update firmware'), firmwareAsk),
    firmwareMessage.el,
  );

  const rollouts = rolloutSection(picker.ids);
  devicesChanged = () => {
    warnUnready();
    rollouts.showMatched();
  };
  const head = h(
    'thead',
    {},
    h(
      'tr',
      {},
      ['Job', 'Kind', 'Device', 'State', 'Progress', 'Created', 'Started', 'Finished', 'Actions'].map((t) => h('th', { scope: 'col' }, t)),
    ),
  );
  render();
  main.replaceChildren(
    h('h1', {}, 'Over-the-air updates'),
    h('div', { class: 'ota-forms' }, syncForm, firmwareForm, rollouts.form),
    rollouts.panel,
    h('h2', { id: 'jobs-title' }, 'Jobs'),
    h('div', { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-labelledby': 'jobs-title' }, h('table', { id: 'jobs', class: 'jobs' }, head, rows)),
  );
  // [A-3] a transfer's bytes come with `jobs` every quarter second while it runs; a rollout with `rollout`.
  return (kind, data) => {
    if (kind === 'jobs' || kind === 'rollout') render();
    if (kind === 'device' || kind === 'removed') picker.update(kind, data);
  };
}

/**
 * A message with its hyphenated words (device ids, file names) kept whole: a phone would break
 * `relay-2` after its hyphen, which reads as two names. Very long ones may still wrap.
 */
export function keepWhole(text) {
  return text.split(/(\S*-\S*)/).map((part, i) => (i % 2 && part.length <= 40 ? h('span', { class: 'nowrap' }, part) : part));
}

/** One job as a table row: its progress (bytes, speed, time left) while it runs. */
function jobRow(job, actions) {
  const p = job.progress;
  const label = job.state === 'succeeded' ? 'done' : job.state;
  const { speed, left } = meter.see(job);
  let progress = '–';
  if (p && job.state === 'running') {
    const percent = p.bytesTotal ? Math.round((100 * p.bytes) / p.bytesTotal) : 0;
    const figures = [`${bytes(p.bytes)} of ${bytes(p.bytesTotal)}`];
    if (speed !== null) figures.push(`${bytes(Math.round(speed))}/s`);
    if (left !== null) figures.push(`${duration(left)} left`);
    progress = h(
      'div',
      { class: 'job-progress' },
      h('progress', { max: 100, value: percent, 'aria-label': `job #${job.id} progress` }),
      h('span', { class: 'job-step' }, p.step),
      h('span', { class: 'job-bytes', 'data-bytes': p.bytes, 'data-total': p.bytesTotal }, figures.join(' · ')),
    );
  } else if (p?.bytesTotal && job.state === 'succeeded') progress = `${bytes(p.bytesTotal)} sent`;
  return h(
    'tr',
    { 'data-job': job.id, 'data-state': job.state },
    h('td', { 'data-label': 'Job' }, `#${job.id}`),
    h('td', { 'data-label': 'Kind' }, job.rolloutId ? `${job.kind} (rollout #${job.rolloutId})` : job.kind),
    h('td', { 'data-label': 'Device', class: 'nowrap' }, job.device),
    h(
      'td',
      { 'data-label': 'State' },
      h('strong', { class: 'job-state' }, label),
      job.message ? h('div', { class: 'muted job-message' }, keepWhole(job.message)) : null,
    ),
    h('td', { class: 'job-progress-cell', 'data-label': 'Progress' }, progress),
    h('td', { class: 'nowrap', 'data-label': 'Created' }, when(job.createdAt)),
    h('td', { class: 'nowrap', 'data-label': 'Started' }, when(job.startedAt)),
    h('td', { class: 'nowrap', 'data-label': 'Finished' }, when(job.finishedAt)),
    h('td', { 'data-label': 'Actions' }, actions),
  );
}

/** A job's Cancel (while it runs or waits) and Retry (once it failed) buttons, their inline confirmation and answer. */
function actionsFor(map, job, select, syncMessage) {
  let entry = map.get(job.id);
  if (!entry) {
    const ask = h('span', { class: 'ask' });
    const message = messageLine({ 'data-job-message': job.id }, 'span');
    const cancel = h(
      'button',
      {
        type: 'button',
        class: 'link cancel',
        'data-cancel': job.id,
        onclick: async () => {
          message.clear();
          cancel.hidden = true;
          const yes = await confirmInline(ask, `Cancel job #${job.id}?`, 'Yes, cancel it', 'Keep it');
          cancel.hidden = !UNFINISHED.includes(entry.state);
          if (!yes) return;
          const answer = await attempt(message, () => post(`/api/ota/jobs/${job.id}/cancel`));
          if (answer) message.done(answer.message || `job #${job.id} cancelled`);
        },
      },
      'Cancel',
    );
    const retry = h(
      'button',
      {
        type: 'button',
        class: 'link retry',
        'data-retry': job.id,
        onclick: async () => {
          const again = sent.get(job.id);
          if (!again) {
            // The hub keeps a job's files only until it ends (docs/ota.md [O-10]): the user picks them again.
            for (const o of select.options) o.selected = o.value === job.device;
            select.dispatchEvent(new Event('change'));
            select.focus();
            return message.error(`the files of job #${job.id} were removed when it ended: ${job.device} is picked above, choose the files again`);
          }
          const answer = await attempt(message, () => post(again.path, again.body));
          if (answer) {
            sent.set(answer.job, again);
            message.done(`retrying as job #${answer.job}`);
            syncMessage.done(`Started #${answer.job} (a retry of #${job.id}).`);
          }
        },
      },
      'Retry',
    );
    entry = { el: h('span', { class: 'job-actions' }, cancel, retry, ask, message.el), cancel, retry, state: job.state };
    map.set(job.id, entry);
  }
  entry.state = job.state;
  entry.cancel.hidden = !UNFINISHED.includes(job.state);
  entry.retry.hidden = !RETRIABLE.includes(job.state) || job.rolloutId != null;
  return entry.el;
}

/** The rollout form (files, which devices, canaries, how many at a time) and the panel that follows one. */
function rolloutSection(ids) {
  const files = h('input', { type: 'file', id: 'rollout-files', multiple: true });
  const prefix = h('input', { type: 'text', id: 'rollout-prefix', placeholder: 'e.g. lib/ (optional)' });
  const pattern = h('input', { type: 'text', id: 'rollout-pattern', value: 'all', autocomplete: 'off', spellcheck: 'false' });
  const canary = h('input', { type: 'number', id: 'rollout-canary', value: 1, min: 0, max: 5000, step: 1, inputmode: 'numeric' });
  const concurrency = h('input', { type: 'number', id: 'rollout-concurrency', value: 2, min: 1, max: 5000, step: 1, inputmode: 'numeric' });
  const matched = h('p', { class: 'muted', id: 'rollout-matched', 'aria-live': 'polite' });
  const showMatched = () => {
    const m = matchDevices(pattern.value.trim() || 'all', ids());
    // Ids are kept whole on a narrow screen (a break at their hyphen reads as two names).
    const names = m.slice(0, 8).flatMap((id, i) => [i ? ', ' : '', h('span', { class: 'nowrap' }, id)]);
    if (m.length) matched.replaceChildren(`${m.length} device${m.length > 1 ? 's' : ''}: `, ...names, m.length > 8 ? ', …' : '');
    else matched.textContent = 'no device matches';
  };
  pattern.addEventListener('input', showMatched);
  showMatched();
  const message = messageLine({ id: 'rollout-message' });
  let followed = null; // the rollout this panel shows
  const panel = h('section', { class: 'card', id: 'rollout', hidden: true, 'aria-labelledby': 'rollout-title' });
  const halt = h('button', { type: 'button', class: 'danger', id: 'rollout-halt' }, 'Halt rollout');
  const resume = h('button', { type: 'button', class: 'secondary', id: 'rollout-resume' }, 'Resume');
  const haltAsk = h('span', { class: 'ask' });
  const panelMessage = messageLine({ id: 'rollout-panel-message' });
  halt.addEventListener('click', async () => {
    if (!followed) return;
    if (!(await confirmInline(haltAsk, `Halt rollout #${followed.id}? No other device starts; unfinished jobs are cancelled.`, 'Yes, halt it', 'Keep going')))
      return;
    const answer = await attempt(panelMessage, () => post(`/api/ota/rollouts/${followed.id}/cancel`));
    if (answer) {
      panelMessage.done(answer.message || `rollout #${followed.id} halted`);
      await refresh(followed.id);
    }
  });
  resume.addEventListener('click', async () => {
    if (!followed) return;
    const answer = await attempt(panelMessage, () => post(`/api/ota/rollouts/${followed.id}/resume`));
    if (answer) {
      panelMessage.done(`rollout #${followed.id} runs again (devices already updated are skipped)`);
      await refresh(followed.id);
    }
  });
  const refresh = async (id) => {
    const r = await attempt(panelMessage, () => api(`/api/ota/rollouts/${id}`));
    if (!r) return;
    followed = r;
    live.rollouts.set(r.id, r);
    render();
  };
  const render = () => {
    if (!followed) return;
    const r = live.rollouts.get(followed.id) ?? followed;
    followed = { ...followed, ...r };
    const jobs = live.jobs.filter((j) => j.rolloutId === r.id);
    const count = (s) => jobs.filter((j) => (Array.isArray(s) ? s.includes(j.state) : j.state === s)).length;
    const total = r.spec?.devices?.length ?? jobs.length;
    panel.hidden = false;
    panel.dataset.state = r.state;
    halt.hidden = r.state !== 'running';
    resume.hidden = r.state === 'running' || r.state === 'succeeded';
    keepFocus(panel, () =>
      panel.replaceChildren(
        h('h2', { id: 'rollout-title' }, `Rollout #${r.id}: `, h('strong', { class: 'rollout-state' }, r.state)),
        h(
          'p',
          {},
          `${count('succeeded')} of ${total} devices updated · ${count('running')} running · ${count('queued')} waiting · ${count(['failed', 'rolled-back'])} failed · canary ${r.spec?.canary ?? '–'}, ${r.spec?.concurrency ?? '–'} at a time`,
        ),
        h('progress', { max: Math.max(1, total), value: count('succeeded'), 'aria-label': `rollout #${r.id} devices updated` }),
        r.message ? h('p', { class: 'muted' }, keepWhole(r.message)) : null,
        h('p', {}, halt, ' ', resume, ' ', haltAsk),
        panelMessage.el,
      ),
    );
  };
  const form = h(
    'form',
    {
      class: 'card',
      'aria-labelledby': 'rollout-form-title',
      onsubmit: async (e) => {
        e.preventDefault();
        const id = await attempt(message, async () => {
          const picked = [...files.files];
          if (picked.length === 0) throw new Error('pick one or more files');
          const which = pattern.value.trim() || 'all';
          const targets = matchDevices(which, ids());
          if (targets.length === 0) throw new Error(`no device matches '${which}': use 'all' or a pattern such as relay-*`);
          const body = {
            files: await Promise.all(picked.map(async (f) => ({ path: prefix.value + f.name, content: await fileToBase64(f) }))),
            devices: targets,
            pattern: which,
            canary: Number(canary.value),
            concurrency: Number(concurrency.value),
          };
          return (await post('/api/ota/rollouts', body)).rollout;
        });
        if (id === undefined) return;
        message.done(`Rollout #${id} started: follow it below.`);
        await refresh(id);
      },
    },
    h('h2', { id: 'rollout-form-title' }, 'Roll out to many devices'),
    h('label', { for: 'rollout-files' }, 'Files'),
    files,
    h('label', { for: 'rollout-prefix' }, 'Folder on the device'),
    prefix,
    h('label', { for: 'rollout-pattern' }, 'Devices: ', h('code', {}, 'all'), ' or a pattern such as ', h('code', {}, 'relay-*')),
    pattern,
    matched,
    h(
      'div',
      { class: 'field-row' },
      h('span', {}, h('label', { for: 'rollout-canary' }, 'Canaries (updated and verified first)'), canary),
      h('span', {}, h('label', { for: 'rollout-concurrency' }, 'At a time'), concurrency),
    ),
    h('p', {}, h('button', { type: 'submit', id: 'rollout-start' }, 'Start rollout')),
    message.el,
  );
  // A rollout that runs when the page opens is followed at once.
  const running = [...live.rollouts.values()].find((r) => r.state === 'running');
  if (running) followed = running;
  return { form, panel, render, showMatched };
}
