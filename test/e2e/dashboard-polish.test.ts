/// <reference lib="dom" />
/**
 * issue 14's leftovers in real Chromium: the Security page's hub log misses no line and shows none twice
 * while lines are written as it opens (the stream's cursor, [A-3]); a rename can be undone from an
 * inline notice (keyboard reachable, announced), back into HomeKit's name too; the Updates page's device
 * list follows devices that come and go while it is open, keeping the focus and half-typed text.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumPath, launchChromium } from '../helpers/chromium.js';
import { axeProblems } from '../helpers/dashboard-checks.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';

const PASSWORD = 'a long dashboard password';

describe('dashboard polish in Chromium', { timeout: 240_000 }, () => {
  let hub: RunningHub | undefined;
  let browser: Browser | undefined;
  const clients: MqttClient[] = [];
  let ready: Promise<{ context: BrowserContext; base: string } | undefined> | undefined;
  const errors: string[] = [];

  after(async () => {
    for (const c of clients) c.end(true);
    await browser?.close();
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  let started: Promise<RunningHub> | undefined;
  const hubOnly = () => (started ??= startHub().then((h) => (hub = h)));

  /** One hub, one browser context logged in as admin; each test opens its own page (its own live stream). */
  const session = (t: TestContext) =>
    (ready ??= (async () => {
      const executable = chromiumPath(t);
      if (!executable) return undefined;
      hub = await hubOnly();
      const base = `http://127.0.0.1:${hub.info.httpPort}`;
      browser = await launchChromium(executable);
      const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
      const setup = await context.request.post(`${base}/api/setup`, { data: { username: 'admin', password: PASSWORD }, headers: { origin: base } });
      assert.equal(setup.status(), 200);
      return { context, base };
    })());

  const open = async (s: { context: BrowserContext; base: string }, hash: string): Promise<Page> => {
    const page = await s.context.newPage();
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${s.base}/${hash}`);
    return page;
  };

  /** A device that connects and reports one value: the hub logs it (new device, new service, online). */
  const arrive = async (id: string) => {
    const device = await connectDevice(hub!.info.mqtt.address, id, { reconnectPeriod: 0 });
    device.on('error', () => {});
    clients.push(device);
    await device.publishAsync(`HomeKit/${id}/Switch/On`, 'true', { qos: 1 });
    return device;
  };

  it('the hub log shows every line once, also those written while the page opens', async (t) => {
    const s = await session(t);
    if (!s || !hub) return;
    // Devices connect one after another (each a few log lines) before, while and after the page opens.
    let stop = false;
    let made = 0;
    const writer = (async () => {
      while (!stop && made < 120) {
        const device = await arrive(`gap-${made++}`);
        device.end(true);
      }
    })();
    await eventually(() => made >= 5, 10_000, 'the first devices');
    // A slow network: the live stream and the page's later requests take a moment, so that lines are
    // written between the page's fetch of the log and the stream's start, and while the page loads.
    const page = await s.context.newPage();
    page.on('pageerror', (error) => errors.push(error.message));
    const slow = (route: { continue: () => Promise<void> }) => new Promise((r) => setTimeout(r, 700)).then(() => route.continue());
    await page.route('**/api/events*', slow);
    await page.route('**/api/tokens', slow);
    await page.route('**/api/users', slow);
    await page.goto(`${s.base}/#/security`);
    await page.waitForSelector('#hub-log span');
    const openedAt = made;
    await eventually(() => made >= openedAt + 15 || made >= 120, 20_000, 'more devices after the page opened');
    stop = true;
    await writer;
    await page.selectOption('#hub-log-level', 'trace');
    const hubLines = async () =>
      ((await (await s.context.request.get(`${s.base}/api/hub-log?level=trace`)).json()) as { lines: Array<{ id: number; text: string }> }).lines;
    const shown = () => page.$$eval('#hub-log span', (spans) => spans.map((x) => x.textContent ?? ''));
    // Once the page has the hub's last line, the two lists are the same, line for line.
    const last = (await hubLines()).at(-1)!;
    await eventually(async () => (await shown()).some((l) => l.endsWith(`${last.text}\n`)), 10_000, "the hub's last line on the page");
    const want = (await hubLines()).filter((l) => l.id <= last.id);
    const got = await shown();
    const lastShown = got.findIndex((l) => l.endsWith(`${last.text}\n`));
    const page_ = got.slice(0, lastShown + 1);
    const missing = want.filter((l) => !page_.some((p) => p.endsWith(` ${l.text}\n`))).map((l) => l.text);
    assert.deepEqual(missing, [], 'lines the page lost');
    assert.equal(page_.length, want.length, 'as many lines on the page as in the hub log (none twice)');
    want.forEach((l, i) => assert.ok(page_[i]?.endsWith(` ${l.text}\n`), `line ${i}: ${page_[i]} is not ${l.text}`));
    await page.close();
  });

  it('the live stream resumes the hub log after a cursor (?hubLogAfter, Last-Event-ID) and refuses a bad one', async () => {
    const running = await hubOnly();
    const base = `http://127.0.0.1:${running.info.httpPort}`;
    const made = cli(['token', 'create', 'stream-reader', '--json', '--data-dir', running.dataDir]);
    assert.equal(made.status, 0, made.stderr);
    const { token } = JSON.parse(made.stdout) as { token: string };
    // A few devices arrive: the hub logs their coming, enough lines to resume in the middle of.
    for (const id of ['cursor-a', 'cursor-b', 'cursor-c']) (await arrive(id)).end(true);
    await eventually(
      async () =>
        ((await (await fetch(`${base}/api/hub-log`, { headers: { authorization: `Bearer ${token}` } })).json()) as { lines: unknown[] }).lines.length >= 8,
      10_000,
      'eight lines in the hub log',
    );
    /** The stream's first blocks up to its second hub-log event: [hello's data, [sse id, line id]…]. */
    const read = async (query: string, headers: Record<string, string> = {}) => {
      const abort = new AbortController();
      const response = await fetch(`${base}/api/events${query}`, { headers: { authorization: `Bearer ${token}`, ...headers }, signal: abort.signal });
      if (response.status !== 200) {
        const answer = { status: response.status, error: ((await response.json()) as { error: string }).error };
        abort.abort();
        return answer;
      }
      let text = '';
      const decoder = new TextDecoder();
      const timer = setTimeout(() => abort.abort(), 10_000);
      try {
        for await (const chunk of response.body!) {
          text += decoder.decode(chunk as Uint8Array, { stream: true });
          if ((text.match(/event: hub-log/g) ?? []).length >= 2) break;
        }
      } catch {
        // the deadline: what came is checked below
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
      const blocks = text.split('\n\n');
      const hello = JSON.parse(/^data: (.*)$/m.exec(blocks.find((b) => b.includes('event: hello')) ?? '')?.[1] ?? '{}') as { hubLogAfter?: number };
      const lines = blocks
        .filter((b) => b.includes('event: hub-log'))
        .map((b) => [Number(/^id: (\d+)$/m.exec(b)?.[1]), (JSON.parse(/^data: (.*)$/m.exec(b)![1]!) as { id: number }).id])
        .slice(0, 2);
      return { status: 200, hello, lines };
    };
    const resumed = (await read('?hubLogAfter=2')) as { status: number; hello: { hubLogAfter?: number }; lines: unknown };
    assert.deepEqual(
      { ...resumed, hello: resumed.hello.hubLogAfter },
      {
        status: 200,
        hello: 2,
        lines: [
          [3, 3],
          [4, 4],
        ],
      },
    );
    assert.deepEqual(((await read('', { 'last-event-id': '5' })) as { lines: unknown }).lines, [
      [6, 6],
      [7, 7],
    ]);
    const bad = await read('?hubLogAfter=soon');
    assert.equal(bad.status, 400);
    assert.match(String((bad as { error: string }).error), /hubLogAfter.*whole number/);
  });

  it('a rename can be undone from its notice, with the keyboard, and HomeKit gets the old name back', async (t) => {
    const s = await session(t);
    if (!s || !hub) return;
    const lamp = await arrive('undo-lamp');
    await lamp.publishAsync('HomeKit/undo-lamp/$name', 'Desk lamp', { qos: 1, retain: true });
    const detail = async () => (await (await s.context.request.get(`${s.base}/api/devices/undo-lamp`)).json()) as { name: string; meta: { name: string } };
    await eventually(async () => (await detail()).meta?.name === 'Desk lamp', 5000, 'undo-lamp known by its name');
    const before = await detail();
    const page = await open(s, '#/device/undo-lamp');
    await page.waitForSelector('#device-name');
    await page.fill('#device-name', 'Porch lamp');
    await page.click('#rename');
    await page.waitForSelector('#name-message.ok');
    assert.equal((await detail()).meta.name, 'Porch lamp');
    // The notice is announced like the others and offers Undo, the next stop of the keyboard after Rename.
    assert.equal(await page.getAttribute('#name-message', 'role'), 'status');
    assert.match((await page.textContent('#name-message')) ?? '', /Porch lamp/);
    await page.waitForSelector('button#rename-undo');
    assert.deepEqual(await axeProblems(page, 'device page with the Undo notice'), []);
    await page.focus('#rename');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'rename-undo');
    await page.keyboard.press('Enter');
    await eventually(async () => (await detail()).name === before.name, 5000, 'the old name back');
    assert.deepEqual([(await detail()).name, (await detail()).meta.name], [before.name, before.meta.name], 'the API and HomeKit have the old name');
    await page.waitForFunction((name) => document.querySelector('h1')?.textContent?.includes(name), before.name);
    assert.equal(await page.inputValue('#device-name'), before.name);
    assert.match((await page.textContent('#name-message')) ?? '', new RegExp(before.name));
    assert.equal(await page.locator('#rename-undo').count(), 0, 'no Undo of the Undo');
    assert.ok(await page.evaluate(() => document.activeElement !== document.body), 'the focus stays in the page');
    // Not undone: the offer goes after about 10 s, and the new name stays.
    await page.fill('#device-name', 'Hall lamp');
    await page.click('#rename');
    await page.waitForSelector('button#rename-undo');
    await page.waitForSelector('#rename-undo', { state: 'detached', timeout: 20_000 });
    assert.equal((await detail()).meta.name, 'Hall lamp');
    await page.close();
    assert.deepEqual(errors, []);
  });

  it('the Updates page lists devices that connect or go while it is open, keeping the focus and half-typed text', async (t) => {
    const s = await session(t);
    if (!s || !hub) return;
    await arrive('ota-old');
    const page = await open(s, '#/ota');
    await page.waitForSelector('#ota-device option[value="ota-old"]');
    assert.equal(await page.locator('#ota-device option[value="ota-newcomer"]').count(), 0);
    // One device picked, and a rollout pattern half typed, when another device arrives.
    await page.selectOption('#ota-device', 'ota-old');
    await page.fill('#rollout-pattern', '');
    await page.focus('#rollout-pattern');
    await page.keyboard.type('ota-n');
    await arrive('ota-newcomer');
    await page.waitForSelector('#ota-device option[value="ota-newcomer"]', { timeout: 10_000 });
    const state = () =>
      page.evaluate(() => {
        const el = document.activeElement as HTMLInputElement | null;
        const select = document.getElementById('ota-device') as HTMLSelectElement;
        return { id: el?.id, value: el?.value, caret: el?.selectionStart, picked: [...select.selectedOptions].map((o) => o.value) };
      });
    assert.deepEqual(await state(), { id: 'rollout-pattern', value: 'ota-n', caret: 5, picked: ['ota-old'] });
    await page.keyboard.type('ewcomer');
    assert.equal(await page.inputValue('#rollout-pattern'), 'ota-newcomer');
    // The rollout's match count knows the newcomer too.
    await page.waitForFunction(() => /1 device: ota-newcomer/.test(document.getElementById('rollout-matched')?.textContent ?? ''));
    // The newcomer is removed elsewhere: its option goes, the pick stays.
    const removed = await s.context.request.delete(`${s.base}/api/devices/ota-newcomer`, { headers: { origin: s.base } });
    assert.equal(removed.status(), 200);
    await page.waitForSelector('#ota-device option[value="ota-newcomer"]', { state: 'detached', timeout: 10_000 });
    assert.deepEqual((await state()).picked, ['ota-old']);
    await page.close();
    assert.deepEqual(errors, []);
  });
});
