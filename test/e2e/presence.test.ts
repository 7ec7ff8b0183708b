/**
 * A device whose MQTT connection is gone is never shown online (finding 15): the real hub with its
 * embedded broker [P-19], and with Mosquitto, where only an announced keepalive tells [P-20]. Seen the
 * way users see it: hap-controller as the iPhone, and the HTTP API the dashboard reads.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { HttpClient } from 'hap-controller';
import type { MqttClient } from 'mqtt';
import { characteristicId, pair, reconnect } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { type RunningMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';
import { requireTool } from '../helpers/system-tools.js';

const NO_RESPONSE = -70402;

/** An API token, made with the CLI before the hub starts. */
function apiToken(dataDir: string): string {
  const created = cli(['token', 'create', 'presence-test', '--json', '--data-dir', dataDir]);
  assert.equal(created.status, 0, created.stderr);
  return (JSON.parse(created.stdout) as { token: string }).token;
}

async function states(hub: RunningHub, token: string): Promise<Record<string, string>> {
  const response = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200);
  const devices = (await response.json()) as Array<{ id: string; state: string }>;
  return Object.fromEntries(devices.map((d) => [d.id, d.state]));
}

/** What a controller reads: the value, or the HAP status of a failed read. */
async function read(controller: HttpClient, id: string): Promise<{ value?: unknown; status?: number }> {
  return (await controller.getCharacteristics([id])).characteristics[0] as { value?: unknown; status?: number };
}

describe('presence with the embedded broker [P-19]', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let controller: HttpClient;
  const clients: MqttClient[] = [];
  after(async () => {
    await controller?.close().catch(() => {});
    for (const c of clients) c.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });
  const device = async (id: string) => {
    const client = await connectDevice(hub.info.mqtt.address, id);
    client.on('error', () => {});
    clients.push(client);
    return client;
  };

  it('shows a device offline once its connection closes cleanly; a sleeper stays asleep; after a restart none is online until it speaks', async () => {
    const dataDir = tempDataDir();
    const token = apiToken(dataDir);
    hub = await startHub({ dataDir });
    const ids: Record<string, string> = {};
    ({ client: controller } = await pair(hub.info.bridges[0]!.port!));

    // A device that says goodbye properly (DISCONNECT, so no last will) and one that goes to sleep.
    const plug = await device('plug');
    await plug.publishAsync('HomeKit/plug/$state', 'online', { qos: 1, retain: true });
    await plug.publishAsync('HomeKit/plug/Outlet/On', '1', { qos: 1 });
    const sleepy = await device('sleepy');
    await sleepy.publishAsync('HomeKit/sleepy/TemperatureSensor/CurrentTemperature', '12.5', { qos: 1 });
    const stays = await device('stays');
    await stays.publishAsync('HomeKit/stays/Switch/On', '1', { qos: 1 });
    await eventually(
      async () => {
        const db = await controller.getAccessories();
        for (const [id, service, characteristic] of [
          ['plug', 'Outlet', 'On'],
          ['sleepy', 'TemperatureSensor', 'CurrentTemperature'],
          ['stays', 'Switch', 'On'],
        ] as const) {
          const found = characteristicId(db, id, service, characteristic);
          if (!found) return false;
          ids[id] = found;
        }
        return true;
      },
      10_000,
      'three accessories',
    );
    assert.equal((await read(controller, ids.plug!)).value, 1);

    await sleepy.publishAsync('HomeKit/sleepy/$state', 'sleeping 600', { qos: 1, retain: true });
    await sleepy.endAsync();
    await plug.endAsync();
    await eventually(async () => (await read(controller, ids.plug!)).status === NO_RESPONSE, 10_000, 'No Response for the disconnected plug');
    await eventually(async () => (await states(hub, token)).plug === 'offline', 5000, 'the plug offline in the API');
    const now = await states(hub, token);
    assert.equal(now.sleepy, 'sleeping', 'a sleeper that left cleanly stays asleep');
    assert.equal(now.stays, 'online', 'a connected device stays online');
    assert.equal((await read(controller, ids.sleepy!)).value, 12.5, "HomeKit keeps showing the sleeper's last value");

    // Restart: the broker starts empty, so nobody is connected.
    await controller.close();
    for (const c of clients.splice(0)) c.end(true);
    const pairing = controller.getLongTermData()!;
    assert.equal(await hub.stop('SIGTERM'), 0, hub.output());
    hub = await startHub({ dataDir });
    controller = reconnect(hub.info.bridges[0]!.port!, pairing);
    assert.deepEqual(await states(hub, token), { plug: 'offline', sleepy: 'sleeping', stays: 'offline' });
    assert.equal((await read(controller, ids.stays!)).status, NO_RESPONSE, 'not online before it reconnects');

    const back = await device('stays');
    await back.publishAsync('HomeKit/stays/$state', 'online', { qos: 1, retain: true });
    await eventually(async () => (await states(hub, token)).stays === 'online', 5000, 'online again once it speaks');
    assert.equal((await read(controller, ids.stays!)).value, 1, 'with its last value');
  });
});

describe('presence with an external broker [P-20]', { timeout: 120_000 }, () => {
  let broker: RunningMosquitto | undefined;
  let hub: RunningHub | undefined;
  let controller: HttpClient | undefined;
  const clients: MqttClient[] = [];
  after(async () => {
    await controller?.close().catch(() => {});
    for (const c of clients) c.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    await broker?.stop();
  });

  it('takes a device that announced a 2 s keepalive offline about 3 s after it goes silent, and back on its next message', async (t) => {
    const binary = requireTool(t, 'mosquitto', ['mosquitto', '/usr/sbin/mosquitto'], 'apt-get install mosquitto');
    if (!binary) return;
    broker = await startMosquitto(binary);
    const dataDir = tempDataDir();
    const token = apiToken(dataDir);
    hub = await startHub({ dataDir, args: ['--mqtt-url', broker.url] });
    ({ client: controller } = await pair(hub.info.bridges[0]!.port!));

    // Connected to Mosquitto the whole time (MQTT.js pings it), but silent towards the hub.
    const quiet = await connectDevice(broker.url, 'quiet', { password: 'unused-by-anonymous' });
    const plain = await connectDevice(broker.url, 'plain', { password: 'unused-by-anonymous' });
    clients.push(quiet, plain);
    await quiet.publishAsync('HomeKit/quiet/$state', 'online', { qos: 1, retain: true });
    await quiet.publishAsync('HomeKit/quiet/$keepalive', '2', { qos: 1 });
    await quiet.publishAsync('HomeKit/quiet/Switch/On', '1', { qos: 1 });
    await plain.publishAsync('HomeKit/plain/Switch/On', '1', { qos: 1 });
    const spoke = Date.now();
    const id = await eventually(async () => characteristicId(await controller!.getAccessories(), 'quiet', 'Switch', 'On'), 10_000, 'the accessory');
    assert.equal((await states(hub, token)).quiet, 'online');

    await eventually(async () => (await read(controller!, id)).status === NO_RESPONSE, 10_000, 'No Response after the keepalive');
    const silentFor = Date.now() - spoke;
    assert.ok(silentFor >= 2900, `offline only after 1.5 x 2 s of silence, not after ${silentFor} ms`);
    const now = await states(hub, token);
    assert.equal(now.quiet, 'offline');
    assert.equal(now.plain, 'online', 'a device that promised nothing keeps its state');

    await quiet.publishAsync('HomeKit/quiet/$keepalive', '2', { qos: 1 }); // its heartbeat
    await eventually(async () => (await read(controller!, id)).value === 1, 5000, 'answers again');
  });
});
