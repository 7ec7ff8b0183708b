/**
 * `mqttkit start --mqtt-url …` (issue 14): the banner tells devices where the broker is as they reach it
 * (this machine's LAN address for a broker the hub reaches on loopback, never 127.0.0.1 when a LAN
 * address exists), and warns that OTA needs `--ota-host` until it is given. A real Mosquitto.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { type RunningMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { cli } from '../helpers/mqtt-device.js';
import { findTool } from '../helpers/system-tools.js';

const lan = Object.values(networkInterfaces())
  .flat()
  .filter((i) => i && i.family === 'IPv4' && !i.internal)
  .map((i) => i!.address);

describe('the start banner with --mqtt-url', { timeout: 120_000 }, () => {
  const binary = findTool('mosquitto', ['mosquitto', '/usr/sbin/mosquitto']);
  let mosquitto: RunningMosquitto | undefined;
  const hubs: RunningHub[] = [];

  before(async () => {
    if (binary) mosquitto = await startMosquitto(binary);
  });

  after(async () => {
    for (const hub of hubs) {
      await hub.stop('SIGKILL');
      removeDataDir(hub.dataDir);
    }
    await mosquitto?.stop();
  });

  /** The banner's lines, from the setup code on (the log lines before are not the banner). */
  async function banner(args: string[]): Promise<string> {
    const hub = await startHub({ args: ['--log-level', 'warn', ...args] });
    hubs.push(hub);
    return hub.output();
  }

  it("names the broker at this machine's LAN address, without credentials, and warns that OTA needs --ota-host", async (t) => {
    if (!mosquitto) return t.skip('needs mosquitto (apt-get install mosquitto)');
    const output = await banner(['--mqtt-url', `mqtt://hubuser:banner-secret-pw@127.0.0.1:${mosquitto.port}`]);
    const line = output.split('\n').find((l) => /^Devices connect/.test(l));
    assert.ok(line, output);
    if (lan.length > 0) {
      for (const address of lan) assert.ok(line.includes(`mqtt://${address}:${mosquitto.port}`), `devices are told ${address}: ${line}`);
      assert.doesNotMatch(line.split('(')[0]!, /127\.0\.0\.1/, `not the loopback address devices cannot reach: ${line}`);
    }
    assert.doesNotMatch(output, /banner-secret-pw/, 'no broker password in the banner');
    assert.match(output, /OTA needs[^\n]*--ota-host/, `a warning naming --ota-host:\n${output}`);
  });

  it('says nothing of --ota-host once it is given', async (t) => {
    if (!mosquitto) return t.skip('needs mosquitto (apt-get install mosquitto)');
    const output = await banner(['--mqtt-url', mosquitto.url, '--ota-host', lan[0] ?? '127.0.0.1']);
    assert.match(output, /^Devices connect/m);
    assert.doesNotMatch(output, /--ota-host/, output);
  });
});

/**
 * Issue 17: the banner says which mqttkit runs on which data dir, and (until the dashboard has an
 * admin) that the first visit creates it; `mqttkit version` answers as `--version` does.
 */
describe('the start banner: version, data dir, first admin', { timeout: 120_000 }, () => {
  const version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const dataDir = tempDataDir();
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    removeDataDir(dataDir);
  });

  it('names the version and the data dir, and says the first dashboard visit creates the admin; not once the admin exists', async () => {
    hub = await startHub({ dataDir });
    const first = hub.output();
    assert.ok(first.includes(`mqttkit ${version}, data dir ${dataDir}`), first);
    assert.match(first, /No admin account yet: the first visit to the dashboard creates it/, first);
    const port = hub.info.httpPort!;
    const setup = await fetch(`http://127.0.0.1:${port}/api/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` },
      body: JSON.stringify({ username: 'admin', password: 'correct horse battery' }),
    });
    assert.equal(setup.status, 200, await setup.text());
    assert.equal(await hub.stop(), 0);
    hub = await startHub({ dataDir });
    assert.ok(hub.output().includes(`data dir ${dataDir}`), hub.output());
    assert.doesNotMatch(hub.output(), /first visit to the dashboard/, hub.output());
  });

  it('`mqttkit version` and `mqttkit --version` both print the version', () => {
    for (const args of [['version'], ['--version']]) {
      const answer = cli(args);
      assert.equal(answer.status, 0, answer.stderr);
      assert.equal(answer.stdout.trim(), version, args.join(' '));
    }
  });
});
