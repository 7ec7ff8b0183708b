/**
 * Mosquitto's dynamic-security client under a broker that goes away or goes silent mid-request: every
 * request ends within its deadline, with a message saying it got no answer (so the change may or may not
 * have been made), never hanging the route, the CLI command or the hub start that waits on it. Real
 * Mosquitto behind a proxy that cuts or freezes the connection.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DynsecClient, DynsecRefusal } from '../../src/broker/mosquitto/dynsec.js';
import { readBrokerCredentials } from '../../src/store/broker-credentials.js';
import { removeDataDir, tempDataDir } from '../helpers/hub-process.js';
import { freePort, type RunningMosquitto, startConfiguredMosquitto } from '../helpers/mosquitto.js';
import { cliAsync, connectDevice } from '../helpers/mqtt-device.js';
import { findTool } from '../helpers/system-tools.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/** Resolves with how the request ended and how long it took; a hang fails after 15 s. */
async function outcome(request: Promise<unknown>): Promise<{ error: Error | undefined; ms: number }> {
  const started = Date.now();
  const hang = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the request hung (no end after 15 s)')), 15_000).unref());
  try {
    await Promise.race([request, hang]);
    return { error: undefined, ms: Date.now() - started };
  } catch (error) {
    if ((error as Error).message.startsWith('the request hung')) throw error;
    return { error: error as Error, ms: Date.now() - started };
  }
}

describe("Mosquitto's dynamic-security client when the broker goes away", { timeout: 90_000 }, () => {
  let broker: RunningMosquitto | undefined;
  let dataDir = '';
  const confDir = mkdtempSync(join(tmpdir(), 'mqttkit-mosquitto-conf-'));
  const proxies: TcpProxy[] = [];
  let login: { username: string; password: string } | undefined;

  before(async () => {
    const binary = findTool('mosquitto', ['mosquitto', '/usr/sbin/mosquitto']);
    if (!binary && process.env.CI === 'true') throw new Error('mosquitto is not installed (apt-get install mosquitto); CI must install it in .ci/run');
    if (!binary) return;
    dataDir = tempDataDir();
    broker = await startConfiguredMosquitto(binary, dataDir, confDir);
    login = readBrokerCredentials(dataDir);
  });
  after(async () => {
    for (const p of proxies) await p.stop();
    await broker?.stop();
    if (dataDir) removeDataDir(dataDir);
    rmSync(confDir, { recursive: true, force: true });
  });

  const through = async () => {
    const proxy = new TcpProxy(broker!.port);
    proxies.push(proxy);
    await proxy.start();
    return { proxy, dynsec: await DynsecClient.connect(`mqtt://127.0.0.1:${proxy.port}`, login!.username, login!.password) };
  };

  it('answers and refusals as before: a refusal is a DynsecRefusal (nothing changed)', async (t) => {
    if (!broker) return t.skip('mosquitto is not installed');
    const { dynsec } = await through();
    await dynsec.run({ command: 'createRole', rolename: 'deadline-role' });
    await assert.rejects(dynsec.run({ command: 'createRole', rolename: 'deadline-role' }), DynsecRefusal);
    await dynsec.close();
  });

  it('a connection dropped mid-request ends the request at once, and the next one too', async (t) => {
    if (!broker) return t.skip('mosquitto is not installed');
    const { proxy, dynsec } = await through();
    await proxy.stop(); // Mosquitto restarted, a network reset
    const first = await outcome(dynsec.run({ command: 'createClient', username: 'deadline-a', password: 'deadline-a-password' }));
    assert.ok(first.error && !(first.error instanceof DynsecRefusal), `no answer, not a refusal: ${first.error}`);
    assert.match(first.error.message, /createClient/);
    assert.ok(first.ms < 7000, `ended after ${first.ms} ms`);
    const next = await outcome(dynsec.run({ command: 'getClient', username: 'deadline-a' }));
    assert.ok(next.error && next.ms < 7000, 'a request on the lost connection fails too');
    await outcome(dynsec.close());
  });

  it('a connection gone silent (a pulled cable) ends the request at its deadline, and closing does not hang', async (t) => {
    if (!broker) return t.skip('mosquitto is not installed');
    const { proxy, dynsec } = await through();
    proxy.freeze();
    const request = await outcome(dynsec.run({ command: 'createClient', username: 'deadline-b', password: 'deadline-b-password' }));
    assert.ok(request.error && !(request.error instanceof DynsecRefusal), `no answer, not a refusal: ${request.error}`);
    assert.ok(request.ms >= 4000 && request.ms < 8000, `ended at its deadline: ${request.ms} ms`);
    const closed = await outcome(dynsec.close());
    assert.ok(closed.ms < 8000, `closing took ${closed.ms} ms`);
    proxy.thaw();
  });

  it('a peer that takes the connection and closes it before the login answer (Mosquitto down behind a proxy) fails the login at once', async (t) => {
    if (!broker) return t.skip('mosquitto is not installed');
    const proxy = new TcpProxy(await freePort()); // nothing listens behind it
    proxies.push(proxy);
    await proxy.start();
    const login = await outcome(DynsecClient.connect(`mqtt://127.0.0.1:${proxy.port}`, 'mqttkit-hub', 'any-password'));
    assert.match(String(login.error?.message), /cannot reach the broker at mqtt:\/\/127\.0\.0\.1:\d+ as mqttkit-hub/);
    assert.ok(login.ms < 7000, `failed after ${login.ms} ms`);
  });

  it("'mqttkit device remove' with Mosquitto not answering removes nothing, says so, and finishes when tried again", async (t) => {
    if (!broker) return t.skip('mosquitto is not installed');
    const proxy = new TcpProxy(broker.port);
    proxies.push(proxy);
    await proxy.start();
    const via = ['--data-dir', dataDir, '--mqtt-url', `mqtt://127.0.0.1:${proxy.port}`];
    const added = await cliAsync(['device', 'add', 'deadline-lamp', '--json', ...via]);
    assert.equal(added.status, 0, added.stderr);
    const { password } = JSON.parse(added.stdout) as { password: string };
    proxy.freeze();
    const failed = await cliAsync(['device', 'remove', 'deadline-lamp', ...via]);
    assert.notEqual(failed.status, 0);
    assert.match(failed.stderr, /Mosquitto did not finish removing deadline-lamp .*nothing else was removed/);
    proxy.thaw();
    const listed = JSON.parse((await cliAsync(['device', 'list', '--json', ...via])).stdout) as Array<{ id: string }>;
    assert.ok(
      listed.some((d) => d.id === 'deadline-lamp'),
      'its account is still there, so the command can be run again',
    );
    (await connectDevice(`mqtt://127.0.0.1:${broker.port}`, 'deadline-lamp', { password })).end(true);
    const removed = await cliAsync(['device', 'remove', 'deadline-lamp', ...via]);
    assert.equal(removed.status, 0, removed.stderr);
  });
});
