/**
 * Issue 16, OTA for a Wi-Fi-less host through its bridge (docs/protocol.md [L-13]…[L-16]): the real hub,
 * mqttkit.link.Host and mqttkit.link.Bridge on CPython joined by the pseudo-terminal relay, paced at
 * 115200 baud as a UART is. `ota push` and `ota sync` reach the host through the bridge (only the changed
 * files); a wire cut mid-transfer fails the job at its deadline with no file replaced, and a retry then
 * succeeds; a bridge reset mid-transfer is a drop the job waits out [O-14]; the bridge fetches only from
 * the broker's host, never from another address or a low port [L-15].
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cliAsync, connectAdmin } from '../helpers/mqtt-device.js';
import { deviceRoot, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { DEVICE_SCRIPTS, Wire } from '../helpers/serial-wire.js';
import { requireTool } from '../helpers/system-tools.js';

const ID = 'serial-ota';
const DEADLINE_S = 10; // --ota-job-deadline's least
const BAUD = 115200;

interface JobJson {
  id: number;
  state: string;
  message: string;
  transfers: Array<{ file: string; ok: boolean; error: string | null }>;
  progress?: { timing?: { wireMs?: number } };
}

describe('OTA to a Wi-Fi-less host through its serial bridge (issue 16)', { timeout: 240_000 }, () => {
  let hub: RunningHub;
  let admin: MqttClient;
  let python: string | undefined;
  const wire = new Wire();
  const processes: RunningDevice[] = [];
  const messages: Array<{ topic: string; text: string; at: number }> = [];
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-link-ota-'));
  let host: RunningDevice;
  let bridge: RunningDevice;
  let hostRoot: string;
  let bridgeRoot: string;

  const startBridge = () => {
    bridge = runDevice(python!, join(DEVICE_SCRIPTS, 'link_bridge.py'), bridgeRoot);
    processes.push(bridge);
  };
  const startHost = () => {
    host = runDevice(python!, join(DEVICE_SCRIPTS, 'link_host.py'), hostRoot);
    processes.push(host);
  };
  /** Every host process's `broker ok` so far: the host restarts (a reboot is a new process under run.py). */
  const oks = () => processes.filter((p) => p.root === hostRoot).reduce((n, p) => n + p.events.filter((e) => e.status === 'broker ok').length, 0);
  const online = async (since: number) => {
    await eventually(() => oks() > since, 30_000, 'the host online through the bridge');
    await eventually(() => messages.some((m) => m.topic === `HomeKit/${ID}/$state` && m.text === 'online'), 10_000, '$state online');
  };
  const ota = async (args: string[]) => {
    const result = await cliAsync(['ota', ...args, '--json', '--data-dir', hub.dataDir]);
    try {
      return JSON.parse(result.stdout) as JobJson;
    } catch {
      throw new Error(`ota ${args.join(' ')} printed no JSON:\n${result.stdout}\n${result.stderr}`);
    }
  };
  const file = (name: string, content: string | Buffer) => {
    const path = join(work, name);
    writeFileSync(path, content);
    return path;
  };
  const leftovers = () => readdirSync(hostRoot).filter((n) => /\.(part|new|old)$/.test(n));
  const said = () => [host, bridge].map((d) => d.output().split('\n').slice(-25).join('\n')).join('\n-- bridge --\n');
  /** Resolves once the host is writing `<name>.part` (the transfer is under way). */
  const receiving = (name: string) =>
    eventually(
      () => {
        const part = join(hostRoot, `${name}.part`);
        return existsSync(part) && statSync(part).size > 0 ? true : undefined;
      },
      20_000,
      `the host receiving ${name}`,
    );

  before(async (t) => {
    python = requireTool(t as unknown as TestContext, 'python3', ['python3'], 'apt-get install python3');
    if (!python) return;
    hub = await startHub({ env: { MQTTKIT_OTA_JOB_DEADLINE: `${DEADLINE_S}s` }, args: ['--ota-reboot-timeout', '30s'] });
    admin = await connectAdmin(hub.info.mqtt.address, 'link-ota-tester', addAdmin(hub.dataDir, 'link-ota-tester'));
    admin.on('error', () => {});
    await admin.subscribeAsync(['HomeKit/+/$state', 'stat/#'], { qos: 1 });
    admin.on('message', (topic, payload) => messages.push({ topic, text: payload.toString(), at: Date.now() }));
    await wire.start(python);
    await wire.say(`pace ${BAUD}`);
    const link = { link_timeout: 2 };
    bridgeRoot = deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, uart: wire.paths.bridge, ntp_host: '', host_reset_after: 60, ...link });
    hostRoot = deviceRoot({ device_id: ID, uart: wire.paths.host, backoff_min: 0.2, backoff_max: 1, keepalive: 10, ...link });
    writeFileSync(join(hostRoot, 'app.py'), 'VERSION = 1\n');
    startBridge();
    startHost();
    await online(0);
  });

  after(async () => {
    for (const p of processes) await p.kill();
    await wire.stop();
    admin?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    for (const root of [hostRoot, bridgeRoot]) if (root) removeRoot(root);
    rmSync(work, { recursive: true, force: true });
  });

  it('`ota push` lands on the host through the bridge with the right hash and the job completes; open, hashes and commit answer', async (t) => {
    if (!python) return t.skip('no python3');
    assert.equal((await cliAsync(['cmd', ID, 'open', '--data-dir', hub.dataDir])).stdout.trim(), 'ota open at 127.0.0.1');
    const payload = randomBytes(24 * 1024);
    const before = oks();
    const started = Date.now();
    const job = await ota(['push', ID, file('blob.bin', payload), '--as', 'lib/blob.bin']);
    assert.equal(job.state, 'succeeded', `${job.message}\n${said()}`);
    assert.ok(readFileSync(join(hostRoot, 'lib/blob.bin')).equals(payload), 'the host holds the bytes sent');
    assert.deepEqual(leftovers(), []);
    await online(before); // the push's reboot: the host came back
    const hashes = JSON.parse((await cliAsync(['cmd', ID, 'hashes', '--data-dir', hub.dataDir])).stdout) as Record<string, string>;
    assert.equal(hashes['lib/blob.bin'], createHash('sha1').update(payload).digest('hex'));
    const wireMs = job.progress?.timing?.wireMs;
    t.diagnostic(
      `${payload.length} bytes through the bridge at ${BAUD} baud: wire ${wireMs} ms (${wireMs ? Math.round(payload.length / wireMs) : '?'} KB/s); job ${Date.now() - started} ms`,
    );
  });

  it('`ota sync` sends only the changed file through the bridge, and the hashes match afterwards', async (t) => {
    if (!python) return t.skip('no python3');
    const same = 'SAME = 1\n';
    writeFileSync(join(hostRoot, 'same.py'), same);
    file('same.py', same);
    file('app.py', 'VERSION = 2\n');
    writeFileSync(join(work, 'manifest.txt'), 'same.py same.py\napp.py app.py\n');
    const job = await ota(['sync', ID, join(work, 'manifest.txt')]);
    assert.equal(job.state, 'succeeded', `${job.message}\n${said()}`);
    assert.deepEqual(
      job.transfers.map((x) => [x.file, x.ok]),
      [['app.py', true]],
      'only the changed file travelled',
    );
    assert.equal(readFileSync(join(hostRoot, 'app.py'), 'utf8'), 'VERSION = 2\n');
  });

  it('a wire cut mid-transfer: the job fails at its deadline with no file replaced, and a retry succeeds', async (t) => {
    if (!python) return t.skip('no python3');
    const old = readFileSync(join(hostRoot, 'app.py'));
    const payload = Buffer.from(`VERSION = 3\n# ${'x'.repeat(30 * 1024)}\n`);
    const pushing = ota(['push', ID, file('app3.py', payload), '--as', 'app.py']);
    await receiving('app.py');
    await wire.say('cut');
    const job = await pushing;
    assert.equal(job.state, 'failed', job.message);
    assert.match(job.message, /left during the transfer of app\.py and did not come back within the job's deadline/);
    assert.ok(readFileSync(join(hostRoot, 'app.py')).equals(old), 'the live file is untouched');
    await eventually(() => (leftovers().length === 0 ? true : undefined), 10_000, `no half-received file left: ${leftovers()}`);

    const before = oks();
    await wire.say('mend');
    await online(before);
    const retry = await ota(['push', ID, file('app3.py', payload), '--as', 'app.py']);
    assert.equal(retry.state, 'succeeded', `${retry.message}\n${said()}`);
    assert.ok(readFileSync(join(hostRoot, 'app.py')).equals(payload));
  });

  it('a bridge reset mid-transfer is a drop: the job waits for the host, sends the file again and succeeds', async (t) => {
    if (!python) return t.skip('no python3');
    const payload = Buffer.from(`VERSION = 4\n# ${'y'.repeat(30 * 1024)}\n`);
    const pushing = ota(['push', ID, file('app4.py', payload), '--as', 'app.py']);
    await receiving('app.py');
    await bridge.kill();
    assert.notEqual(readFileSync(join(hostRoot, 'app.py'), 'utf8').slice(0, 11), 'VERSION = 4', 'not live before the commit');
    startBridge(); // the bridge's board restarts
    const job = await pushing;
    assert.equal(job.state, 'succeeded', `${job.message}\n${said()}`);
    assert.match(job.message, /resumed after the device dropped once/);
    assert.ok(
      job.transfers.some((x) => !x.ok && /interrupted/.test(x.error ?? '')),
      JSON.stringify(job.transfers),
    );
    assert.ok(readFileSync(join(hostRoot, 'app.py')).equals(payload));
  });

  it('[L-15] the bridge fetches only from the broker: another address and a low port are refused, nothing connects', async (t) => {
    if (!python) return t.skip('no python3');
    // A service elsewhere on the "LAN" (another loopback address): a host must not reach it through the bridge.
    let connections = 0;
    const lan: Server = createServer((s) => {
      connections++;
      s.end('secret banner\n');
    });
    await new Promise<void>((r) => lan.listen(0, '127.0.0.2', () => r()));
    const port = (lan.address() as { port: number }).port;
    try {
      const hash = createHash('sha1').update('secret banner\n').digest('hex');
      const report = async (name: string, trigger: string) => {
        const since = Date.now();
        await admin.publishAsync(`${ID}/OTA`, trigger, { qos: 1 });
        const found = await eventually(
          () => messages.find((m) => m.topic === `stat/${ID}/OTA` && m.at >= since && m.text.includes(`"${name}"`)),
          15_000,
          `the host's report on ${name}`,
        );
        return JSON.parse(found.text) as { ok: boolean; error: string };
      };
      const elsewhere = await report('lan.txt', `127.0.0.2|${port}|lan.txt|${hash}|0`);
      assert.equal(elsewhere.ok, false);
      assert.match(elsewhere.error, /127\.0\.0\.2 is not the broker's address/);
      const low = await report('low.txt', `127.0.0.1|22|low.txt|${hash}|0`);
      assert.equal(low.ok, false);
      assert.match(low.error, /port 22 is below 1024/);
      assert.equal(connections, 0, 'the bridge never connected to the other address');
      assert.equal(existsSync(join(hostRoot, 'lan.txt')) || existsSync(join(hostRoot, 'lan.txt.part')), false);
      const stats = JSON.parse((await cliAsync(['cmd', ID, 'link', '--data-dir', hub.dataDir])).stdout) as { up: boolean };
      assert.equal(stats.up, true, 'the link stays up');
    } finally {
      lan.close();
    }
  });
});
