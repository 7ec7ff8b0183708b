/// <reference lib="dom" />
/**
 * The dashboard's operations side in real Chromium: the Updates page (live bytes with speed and time
 * left, the jobs table with its times, Cancel and Retry, devices that never answered `getversion`
 * marked, a rollout started, followed and halted from the page), and whole-site qualities: no
 * navigation on the setup and login pages, a favicon, dark mode by `prefers-color-scheme`, keyboard
 * reach, axe-core on every page (no serious or critical violation), and at 390 px no horizontal scroll
 * and no word broken mid-word (measured).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { chromiumPath, launchChromium } from '../helpers/chromium.js';
import { axeProblems, phoneProblems, unreachable } from '../helpers/dashboard-checks.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync, connectDevice } from '../helpers/mqtt-device.js';
import { deviceRoot, PROBE, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { requireTool } from '../helpers/system-tools.js';

const PASSWORD = 'a long dashboard password';
const DESKTOP = { width: 1100, height: 800 };
const PHONE = { width: 390, height: 800 };

/**
 * The page as it is, in light and dark mode, on a desktop and at 390 px: axe-core's serious and critical
 * findings, and (at 390 px) sideways scroll or broken words; then the keyboard's reach (desktop, light).
 */
async function everyLook(page: Page, where: string): Promise<string[]> {
  const problems: string[] = [];
  for (const viewport of [DESKTOP, PHONE])
    for (const scheme of ['light', 'dark'] as const) {
      await page.setViewportSize(viewport);
      await page.emulateMedia({ colorScheme: scheme });
      const look = `${where} (${scheme}, ${viewport.width} px)`;
      problems.push(...(await axeProblems(page, look)));
      if (viewport === PHONE) problems.push(...(await phoneProblems(page, look)));
    }
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: 'light' });
  problems.push(...(await unreachable(page)).map((c) => `${where}: the keyboard never reaches ${c}`));
  return problems;
}

describe('dashboard operations in Chromium', { timeout: 300_000 }, () => {
  let hub: RunningHub | undefined;
  let browser: Browser | undefined;
  let probe: RunningDevice | undefined;
  let silent: MqttClient | undefined;
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-dash-ops-'));
  let ready: Promise<{ page: Page; base: string } | undefined> | undefined;
  const errors: string[] = [];

  after(async () => {
    await browser?.close();
    await probe?.kill();
    silent?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    if (probe) removeRoot(probe.root);
    rmSync(work, { recursive: true, force: true });
  });

  /** One hub and one browser page for the tests below; the first test creates the admin account. */
  const session = (t: TestContext) =>
    (ready ??= (async () => {
      const executable = chromiumPath(t);
      if (!executable) return undefined;
      hub = await startHub();
      const base = `http://127.0.0.1:${hub.info.httpPort}`;
      browser = await launchChromium(executable);
      const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
      page.on('pageerror', (error) => errors.push(error.message));
      page.on('dialog', (dialog) => {
        errors.push(`a browser dialog: ${dialog.message()}`);
        void dialog.dismiss().catch(() => {});
      });
      return { page, base };
    })());

  it('hides the navigation on the setup and login pages, has a favicon, passes axe there', async (t) => {
    const s = await session(t);
    if (!s) return;
    const { page, base } = s;
    await page.goto(base);
    await page.waitForSelector('text=Create the admin account');
    // Checked at the end, so that a failure here leaves the account made for the tests below.
    const navOnSetup = await page.locator('#nav').isVisible();
    const icon = await page.getAttribute('link[rel="icon"]', 'href');
    assert.ok(icon, 'the page names a favicon');
    const fetched = await page.request.get(new URL(icon, base).toString());
    assert.equal(fetched.status(), 200);
    assert.match(fetched.headers()['content-type'] ?? '', /image\//);
    const setupProblems = await everyLook(page, 'setup');
    await page.fill('#password', PASSWORD);
    await page.click('#submit');
    await page.waitForSelector('#nav:not([hidden])');
    await page.click('#logout');
    await page.waitForSelector('text=Log in');
    const navOnLogin = await page.locator('#nav').isVisible();
    const loginProblems = await everyLook(page, 'login');
    await page.fill('#username', 'admin');
    await page.fill('#password', PASSWORD);
    await page.click('#submit');
    await page.waitForSelector('#nav:not([hidden])');
    assert.equal(navOnSetup, false, 'no navigation before there is an account');
    assert.equal(navOnLogin, false, 'no navigation on the login page');
    assert.deepEqual([...setupProblems, ...loginProblems], []);
  });

  it('marks devices that never answered getversion, and shows bytes, speed and time left while a transfer runs', async (t) => {
    const s = await session(t);
    const python = requireTool(t, 'python3', ['python3'], 'apt-get install python3');
    if (!s || !python || !hub) return;
    const { page, base } = s;
    // A real device library (CPython) reading at 256 KiB/s, as a board on Wi-Fi, and an MQTT client that never answers.
    probe = runDevice(python, PROBE, deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: 'ops-probe', backoff_min: 0.2 }), [
      '--pace',
      '256',
    ]);
    await probe.waitFor((e) => e.status === 'broker ok', 15_000, 'the probe to connect');
    silent = await connectDevice(hub.info.mqtt.address, 'ops-silent');
    silent.on('error', () => {});
    // It listens for commands (so the hub asks it), and never answers.
    await silent.subscribeAsync('cmnd/ops-silent/OTA', { qos: 1 });
    await silent.publishAsync('HomeKit/ops-silent/Switch/On', '0', { qos: 1 });
    const answers = async (id: string) =>
      ((await (await page.request.get(`${base}/api/devices/${id}`)).json()) as { answersCommands: boolean | null }).answersCommands;
    await eventually(async () => (await answers('ops-probe')) === true, 20_000, 'the probe to answer getversion');
    assert.notEqual(await answers('ops-silent'), true, 'ops-silent has not answered getversion');

    await page.goto(`${base}/#/ota`);
    await page.waitForSelector('#ota-device option[value="ops-probe"]', { state: 'attached' });
    assert.equal(await page.getAttribute('#ota-device option[value="ops-probe"]', 'data-ota'), 'ready');
    assert.equal(await page.getAttribute('#ota-device option[value="ops-silent"]', 'data-ota'), 'no-answer');
    assert.match((await page.textContent('#ota-device option[value="ops-silent"]')) ?? '', /never answered getversion/);
    await page.selectOption('#ota-device', 'ops-silent');
    await page.waitForSelector('#ota-pick-warning:not([hidden])');
    assert.match((await page.textContent('#ota-pick-warning')) ?? '', /ops-silent never answered getversion/);

    // Every text the progress cell showed, as it changed.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { progressSeen: string[] }).progressSeen = seen;
      new MutationObserver(() => {
        for (const el of document.querySelectorAll('.job-bytes')) if (!seen.includes(el.textContent ?? '')) seen.push(el.textContent ?? '');
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.selectOption('#ota-device', 'ops-probe');
    const file = join(work, 'big.py');
    writeFileSync(file, `# ${'x'.repeat(768 * 1024)}\n`);
    await page.setInputFiles('#ota-files', file);
    await page.click('#ota-start');
    const row = page.locator('tr[data-job][data-state="succeeded"]').first();
    await row.waitFor({ timeout: 90_000 });
    const seen = await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen);
    const moving = seen.filter((x) => /^\d+(\.\d)? KiB of 768 KiB · \d+(\.\d)? KiB\/s · .+ left$/.test(x));
    assert.ok(moving.length >= 2, `bytes, speed and time left moved while the transfer ran: ${JSON.stringify(seen)}`);
    const cells = await row.locator('td').allTextContents();
    for (const i of [5, 6, 7]) assert.match(cells[i] ?? '', /\d{1,2}:\d{2}:\d{2}/, `created, started and finished times: ${JSON.stringify(cells)}`);
    assert.equal(await page.locator('table#jobs thead th').count(), 9);
  });

  it('cancels a job and retries it from its row', async (t) => {
    const s = await session(t);
    if (!s || !silent) return;
    const { page, base } = s;
    await page.goto(`${base}/#/ota`);
    await page.waitForSelector('#ota-device option[value="ops-silent"]', { state: 'attached' });
    await page.selectOption('#ota-device', 'ops-silent');
    const file = join(work, 'main.py');
    writeFileSync(file, 'print("silent")\n');
    await page.setInputFiles('#ota-files', file);
    await page.click('#ota-start');
    const job = page.locator('tr[data-job][data-state="queued"], tr[data-job][data-state="running"]').first();
    await job.waitFor({ timeout: 10_000 });
    const id = Number(await job.getAttribute('data-job'));
    await page.click(`[data-cancel="${id}"]`);
    await page.click(`tr[data-job="${id}"] [data-confirm="yes"]`);
    await page.waitForSelector(`tr[data-job="${id}"][data-state="cancelled"]`, { timeout: 10_000 });
    await page.click(`[data-retry="${id}"]`);
    await page.waitForFunction((n) => /retrying as job #\d+/.test(document.querySelector(`[data-job-message="${n}"]`)?.textContent ?? ''), id);
    const again = Number(/#(\d+)/.exec((await page.textContent(`[data-job-message="${id}"]`)) ?? '')?.[1]);
    assert.ok(again > id, 'a new job');
    await page.waitForSelector(`tr[data-job="${again}"]`, { timeout: 10_000 });
    await page.click(`[data-cancel="${again}"]`);
    await page.click(`tr[data-job="${again}"] [data-confirm="yes"]`);
    await page.waitForSelector(`tr[data-job="${again}"][data-state="cancelled"]`, { timeout: 10_000 });
  });

  it('starts a rollout from the page, follows it to its end, and halts another', async (t) => {
    const s = await session(t);
    if (!s || !probe) return;
    const { page, base } = s;
    await page.goto(`${base}/#/ota`);
    await page.waitForSelector('#rollout-files');
    const file = join(work, 'app.py');
    writeFileSync(file, 'print("rolled out")\n');
    await page.setInputFiles('#rollout-files', file);
    await page.fill('#rollout-pattern', 'ops-pro*');
    await page.waitForFunction(() => /1 device: ops-probe/.test(document.querySelector('#rollout-matched')?.textContent ?? ''));
    await page.fill('#rollout-canary', '1');
    await page.fill('#rollout-concurrency', '1');
    await page.click('#rollout-start');
    await page.waitForSelector('#rollout:not([hidden])');
    await page.waitForSelector('#rollout[data-state="succeeded"]', { timeout: 60_000 });
    assert.match((await page.textContent('#rollout')) ?? '', /1 of 1 devices updated/);

    // A rollout to the device that never answers waits on it: halted from the page.
    await page.setInputFiles('#rollout-files', file);
    await page.fill('#rollout-pattern', 'ops-silent');
    await page.click('#rollout-start');
    await page.waitForSelector('#rollout[data-state="running"] #rollout-halt', { timeout: 10_000 });
    // On Halt when the jobs table and this panel are drawn again (another job starts): Halt keeps the focus.
    await page.focus('#rollout-halt');
    const other = await page.request.post(`${base}/api/ota/sync`, {
      data: { device: 'ops-probe', files: [{ path: 'other.py', content: Buffer.from('print(2)\n').toString('base64') }] },
      headers: { origin: base },
    });
    const otherJob = ((await other.json()) as { job: number }).job;
    await page.waitForSelector(`tr[data-job="${otherJob}"]`);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'rollout-halt', 'Halt keeps the focus through the redraw');
    await page.click('#rollout-halt');
    await page.click('#rollout [data-confirm="yes"]');
    await page.waitForSelector('#rollout[data-state="cancelled"]', { timeout: 15_000 });
    assert.equal(await page.locator('#rollout-halt').isVisible(), false);
    // The other job ends before the next test (the probe reboots to verify it).
    await page.waitForSelector(`tr[data-job="${otherJob}"][data-state="succeeded"]`, { timeout: 60_000 });
  });

  it('Security: adds a device (its password shown once, and it works), makes and revokes an API token, adds and removes a dashboard account', async (t) => {
    const s = await session(t);
    if (!s || !hub) return;
    const { page, base } = s;
    await page.goto(`${base}/#/security`);
    await page.fill('#device-add-id', 'ops-new-lamp');
    await page.click('#device-add');
    const password = ((await page.textContent('#device-password .secret', { timeout: 10_000 })) ?? '').trim();
    assert.ok(password.length >= 16, 'a generated password is shown');
    await page.waitForSelector('tr[data-account="ops-new-lamp"]');
    const lamp = await connectDevice(hub.info.mqtt.address, 'ops-new-lamp', { password, reconnectPeriod: 0 });
    lamp.on('error', () => {});
    assert.ok(lamp.connected, 'the device logs in with the password the page showed');
    lamp.end(true);
    await assert.rejects(connectDevice(hub.info.mqtt.address, 'ops-new-lamp', { password: 'not the password at all', reconnectPeriod: 0 }));
    // Shown once: after the page is opened again it is nowhere. (Each page waited for: until the next
    // one is drawn, the one before stays on the screen.)
    await page.goto(`${base}/#/devices`);
    await page.waitForSelector('#devices');
    await page.goto(`${base}/#/security`);
    await page.waitForSelector('#token-name');
    assert.equal(await page.locator('#device-password').count(), 0);
    assert.ok(!(await page.content()).includes(password), 'the password is not on the page any more');

    await page.fill('#token-name', 'ops-script');
    await page.click('#token-create');
    const token = ((await page.textContent('#token-secret .secret', { timeout: 10_000 })) ?? '').trim();
    assert.match(token, /^mk_/);
    await page.waitForSelector('tr[data-token="ops-script"]');
    const scrape = () => fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    assert.equal(await scrape(), 200, 'the token works');
    await page.click('[data-revoke="ops-script"]');
    await page.click('tr[data-token="ops-script"] [data-confirm="yes"]');
    await page.waitForSelector('tr[data-token="ops-script"]', { state: 'detached', timeout: 10_000 });
    assert.equal(await scrape(), 401, 'a revoked token is refused');

    await page.fill('#user-name', 'second-admin');
    await page.fill('#user-password', 'another long password');
    await page.click('#user-add');
    await page.waitForSelector('tr[data-user="second-admin"]');
    const login = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base },
      body: JSON.stringify({ username: 'second-admin', password: 'another long password' }),
    });
    assert.equal(login.status, 200, 'the new account logs in');
    // The account in use is not removed (the user would lock themselves out): said next to its button.
    await page.click('[data-remove-user="admin"]');
    await page.click('tr[data-user="admin"] [data-confirm="yes"]');
    await page.waitForFunction(() => /logged in as admin/.test(document.querySelector('[data-user-message="admin"]')?.textContent ?? ''));
    await page.click('[data-remove-user="second-admin"]');
    await page.click('tr[data-user="second-admin"] [data-confirm="yes"]');
    await page.waitForSelector('tr[data-user="second-admin"]', { state: 'detached', timeout: 10_000 });
  });

  it('shows the page the user went to last, not a slower one they left', async (t) => {
    const s = await session(t);
    if (!s) return;
    const { page, base } = s;
    await page.goto(`${base}/#/pairing`);
    await page.waitForSelector('h1:has-text("Pair with the Home app")');
    // The next page's data is slow (a long device list on a busy hub); the user moves on meanwhile.
    let held = 0;
    await page.route('**/api/devices', async (route) => {
      if (held++ === 0) await new Promise((r) => setTimeout(r, 1500));
      await route.continue();
    });
    try {
      await page.goto(`${base}/#/ota`);
      await eventually(() => held > 0, 5000, 'the Updates page to ask for the device list');
      await page.goto(`${base}/#/security`);
      await page.waitForSelector('#token-name');
      await page.waitForTimeout(2500); // the slow page's answer has come by now
      assert.ok(held >= 2, 'both pages asked for the device list');
      assert.equal(await page.locator('#token-name').count(), 1, 'the Security page is still shown');
      assert.equal(await page.locator('h1', { hasText: 'Over-the-air updates' }).count(), 0, 'the Updates page, left while it loaded, did not cover it');
    } finally {
      await page.unroute('**/api/devices');
    }
  });

  it('a slow page left behind does not put back, with its older list, a device removed meanwhile', async (t) => {
    const s = await session(t);
    if (!s || !hub) return;
    const { page, base } = s;
    const ghost = await connectDevice(hub.info.mqtt.address, 'ops-ghost');
    await ghost.publishAsync('HomeKit/ops-ghost/Switch/On', '1', { qos: 1 });
    ghost.end(true);
    await page.goto(`${base}/#/devices`);
    await page.waitForSelector('tr[data-device="ops-ghost"]');
    // The Updates page's device list is answered as it was when asked, and only 4 s later.
    let held = 0;
    await page.route('**/api/devices', async (route) => {
      if (held++ > 0) return route.continue();
      const response = await route.fetch();
      await new Promise((r) => setTimeout(r, 4000));
      await route.fulfill({ response });
    });
    try {
      await page.goto(`${base}/#/ota`);
      await eventually(() => held > 0, 5000, 'the Updates page to ask for the device list');
      const removed = await cliAsync(['device', 'remove', 'ops-ghost', '--data-dir', hub.dataDir]);
      assert.equal(removed.status, 0, removed.stderr);
      await page.goto(`${base}/#/devices`);
      await page.waitForSelector('tr[data-device="ops-ghost"]', { state: 'detached' });
      await eventually(() => held >= 2, 5000, 'the Devices page to ask for its own list');
      await page.waitForTimeout(4500); // the left page's old list has arrived by now
      // Typing in the search draws the list again from what the page holds.
      await page.fill('#device-search', 'ops-');
      await page.fill('#device-search', '');
      assert.equal(await page.locator('tr[data-device="ops-ghost"]').count(), 0, 'the removed device did not come back');
    } finally {
      await page.unroute('**/api/devices');
    }
  });

  it('Security: switches the registration policy of the running hub', async (t) => {
    const s = await session(t);
    if (!s || !hub) return;
    const { page, base } = s;
    await page.goto(`${base}/#/security`);
    assert.equal(await page.textContent('#registration-policy'), 'open');
    await page.selectOption('#registration-policy-select', 'closed');
    await page.click('#registration-policy-apply');
    await page.waitForFunction(() => document.querySelector('#registration-policy')?.textContent === 'closed');
    assert.match((await page.textContent('#registration-policy-message')) ?? '', /until the hub restarts/);
    await assert.rejects(
      connectDevice(hub.info.mqtt.address, 'ops-stranger', { password: 'a stranger password', reconnectPeriod: 0 }),
      /Not authorized|refused/i,
    );
    await page.selectOption('#registration-policy-select', 'open');
    await page.click('#registration-policy-apply');
    await page.waitForFunction(() => document.querySelector('#registration-policy')?.textContent === 'open');
    const stranger = await connectDevice(hub.info.mqtt.address, 'ops-stranger', { password: 'a stranger password', reconnectPeriod: 0 });
    stranger.on('error', () => {});
    assert.ok(stranger.connected, 'registers again under the open policy');
    stranger.end(true);
  });

  it("Security: the hub's own log, its last lines and new ones live, filtered by level", async (t) => {
    const s = await session(t);
    if (!s || !hub) return;
    const { page, base } = s;
    await page.goto(`${base}/#/security`);
    await page.waitForSelector('#hub-log span');
    assert.match((await page.textContent('#hub-log')) ?? '', /INFO/, 'the lines the hub logged before the page opened');
    const before = await page.locator('#hub-log span').count();
    // A device with a wrong password: the hub logs the refusal, and the open page shows it without a reload.
    await assert.rejects(connectDevice(hub.info.mqtt.address, 'ops-new-lamp', { password: 'wrong password again', reconnectPeriod: 0 }));
    await page.waitForFunction(
      (n) => document.querySelectorAll('#hub-log span').length > n && /ops-new-lamp/.test(document.querySelector('#hub-log')?.textContent ?? ''),
      before,
      {
        timeout: 10_000,
      },
    );
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.selectOption('#hub-log-level', 'warn');
    const levels = await page.$$eval('#hub-log span', (spans) => [...new Set(spans.map((x) => x.getAttribute('data-level')))]);
    assert.ok(
      levels.every((l) => ['warn', 'error', 'fatal'].includes(l ?? '')),
      `only warn and above: ${levels.join(', ')}`,
    );
    await page.selectOption('#hub-log-level', 'info');
    assert.ok((await page.locator('#hub-log span[data-level="info"]').count()) > 0);
    assert.deepEqual(
      requests.filter((u) => u.includes('/api/hub-log')),
      [],
      'the filter works on the lines the page has',
    );
  });

  it('keeps the focus and a half-typed field on the Updates page while live updates redraw it', async (t) => {
    const s = await session(t);
    if (!s || !silent) return;
    const { page, base } = s;
    await page.goto(`${base}/#/ota`);
    await page.waitForSelector('#rollout-start');
    // Two jobs for the device that never answers: they wait. A third party's action changes one of them.
    const queue = async () =>
      (
        (await (
          await page.request.post(`${base}/api/ota/sync`, {
            data: { device: 'ops-silent', files: [{ path: 'focus.py', content: Buffer.from('print(1)\n').toString('base64') }] },
            headers: { origin: base },
          })
        ).json()) as { job: number }
      ).job;
    const first = await queue();
    const second = await queue();
    await page.waitForSelector(`[data-cancel="${second}"]`);
    const focused = () =>
      page.evaluate(() => {
        const el = document.activeElement as HTMLInputElement | null;
        return { cancel: el?.getAttribute('data-cancel') ?? null, id: el?.id ?? '', value: el?.value ?? '', caret: el?.selectionStart ?? null };
      });
    // On the first job's Cancel button (reached with the keyboard) when the second job is cancelled elsewhere.
    await page.focus(`[data-cancel="${first}"]`);
    const cancelled = await page.request.post(`${base}/api/ota/jobs/${second}/cancel`, { headers: { origin: base } });
    assert.equal(cancelled.status(), 200);
    await page.waitForSelector(`tr[data-job="${second}"][data-state="cancelled"]`);
    assert.equal((await focused()).cancel, String(first), 'the Cancel button keeps the focus through the redraw');
    // Typing a rollout pattern when a job appears: the text, the caret and the focus stay.
    await page.fill('#rollout-pattern', '');
    await page.focus('#rollout-pattern');
    await page.keyboard.type('ops-si');
    const third = await queue();
    await page.waitForSelector(`tr[data-job="${third}"]`);
    assert.deepEqual(await focused(), { cancel: null, id: 'rollout-pattern', value: 'ops-si', caret: 6 });
    await page.keyboard.type('lent');
    assert.equal(await page.inputValue('#rollout-pattern'), 'ops-silent');
    for (const job of [first, third]) await page.request.post(`${base}/api/ota/jobs/${job}/cancel`, { headers: { origin: base } });
    await page.waitForSelector(`tr[data-job="${third}"][data-state="cancelled"]`);
  });

  it('passes axe on every page, in light and dark mode, on a desktop and at 390 px; the keyboard reaches every control of every page', async (t) => {
    const s = await session(t);
    if (!s) return;
    const { page, base } = s;
    const problems: string[] = [];
    // A hash change keeps the page: main is emptied first, then an element only the new page has is waited for.
    const marks: Record<string, string> = {
      devices: '#device-count',
      'device/ops-silent': '#device-name',
      'device/no-such-device': '#not-found',
      pairing: '#setup-code',
      ota: '#rollout-start',
      security: '#hub-log',
    };
    for (const [route, mark] of Object.entries(marks)) {
      await page.evaluate(() => document.getElementById('main')?.replaceChildren());
      await page.goto(`${base}/#/${route}`);
      await page.waitForSelector(mark);
      await page.waitForLoadState('networkidle').catch(() => {});
      problems.push(...(await everyLook(page, `#/${route}`)));
    }
    assert.deepEqual(problems, []);
    // Dark mode follows the system setting: the page's background is dark then, light otherwise.
    const lightness = async () =>
      page.evaluate(() => {
        const [r, g, b] = (getComputedStyle(document.body).backgroundColor.match(/\d+/g) ?? []).map(Number);
        return ((r ?? 0) + (g ?? 0) + (b ?? 0)) / 3;
      });
    await page.emulateMedia({ colorScheme: 'dark' });
    assert.ok((await lightness()) < 60, 'dark background in dark mode');
    await page.emulateMedia({ colorScheme: 'light' });
    assert.ok((await lightness()) > 200, 'light background in light mode');
  });

  it('at 390 px: no horizontal scroll and no word broken mid-word on the operations pages', async (t) => {
    const s = await session(t);
    if (!s) return;
    const { page, base } = s;
    await page.setViewportSize({ width: 390, height: 800 });
    const problems: string[] = [];
    // A hash change keeps the page: wait for an element only the new page has, or the last page is measured.
    const marks: Record<string, string> = { ota: '#ota-device', security: '#device-add-id', pairing: '#setup-code' };
    for (const route of ['ota', 'security', 'pairing']) {
      await page.goto(`${base}/#/${route}`);
      await page.waitForSelector(marks[route]!);
      await page.waitForLoadState('networkidle').catch(() => {});
      problems.push(...(await phoneProblems(page, `#/${route}`)));
    }
    await page.click('#logout');
    await page.waitForSelector('text=Log in');
    problems.push(...(await phoneProblems(page, '#/login')));
    assert.deepEqual(problems, []);
    assert.deepEqual(errors, [], 'no script errors or browser dialogs');
  });
});
