/**
 * Issue 11, finding 8: a HomeKit write to a sleeping device waits for it. The hub publishes the `/set`
 * retained, HomeKit shows the written value past the confirmation timeout while the device sleeps, the
 * device gets the write when it wakes (a clean session), and the retained `/set` is cleared once the
 * device confirms; a device that wakes and does not confirm sees the value revert a confirmation
 * timeout after its wake, and the stale `/set` is cleared too. Real hub, hap-controller, MQTT.js.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { HttpClient } from 'hap-controller';
import type { MqttClient } from 'mqtt';
import { characteristicId, pair } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cliAsync, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';

const CONFIRM_MS = 1000;

describe('writes to a sleeping device', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let controller: HttpClient;
  let adminPassword = '';
  const clients: MqttClient[] = [];

  const track = <T extends MqttClient>(c: T) => {
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  const asleep = async (ids: string[]) => {
    const list = JSON.parse((await cliAsync(['devices', '--json', '--data-dir', hub.dataDir])).stdout) as Array<{ id: string; state: string }>;
    return ids.every((id) => list.some((d) => d.id === id && d.state === 'sleeping'));
  };
  /** Falls asleep as the protocol says: a value, `$state sleeping 60`, then a clean DISCONNECT. */
  const sleeper = async (id: string, service: string) => {
    const device = await connectDevice(hub.info.mqtt.address, id);
    device.on('error', () => {});
    await device.publishAsync(`HomeKit/${id}/${service}/On`, '0', { qos: 1, retain: true });
    await device.publishAsync(`HomeKit/${id}/$state`, 'sleeping 60', { qos: 1, retain: true });
    await device.endAsync();
  };
  /** Wakes as a deep-sleeping board does: a new clean session, subscribed to its /set topics. */
  const wake = async (id: string) => {
    const device = track(await connectDevice(hub.info.mqtt.address, id, { clean: true }));
    const sets: Array<{ value: string; retained: boolean }> = [];
    device.on('message', (topic, payload, packet) => {
      if (topic.endsWith('/set')) sets.push({ value: payload.toString(), retained: packet.retain });
    });
    await device.subscribeAsync([`HomeKit/${id}/+/+/set`, `HomeKit/${id}/+/+/+/set`], { qos: 1 });
    return { device, sets };
  };
  /**
   * What a newcomer gets retained on a characteristic's topics: `…/On/#` matches the value topic (which
   * the device keeps retained, so it always arrives) and its `/set`; both come from one retained read.
   */
  const retainedSet = async (id: string, service: string): Promise<string | undefined> => {
    const probe = await connectAdmin(hub.info.mqtt.address, 'probe', adminPassword);
    probe.on('error', () => {});
    const seen = new Map<string, string>();
    probe.on('message', (topic, payload, packet) => {
      if (packet.retain) seen.set(topic, payload.toString());
    });
    await probe.subscribeAsync(`HomeKit/${id}/${service}/On/#`, { qos: 1 });
    await eventually(() => seen.has(`HomeKit/${id}/${service}/On`), 5000, 'the retained value');
    await new Promise((r) => setTimeout(r, 200)); // the /set, if retained, is sent in the same batch
    await probe.endAsync();
    return seen.get(`HomeKit/${id}/${service}/On/set`);
  };
  const read = async (aidIid: string) => (await controller.getCharacteristics([aidIid])).characteristics[0]!.value;
  const on = (value: unknown) => value === true || value === 1;

  before(async () => {
    hub = await startHub({ args: ['--confirm-timeout', `${CONFIRM_MS}ms`] });
    adminPassword = addAdmin(hub.dataDir, 'probe');
    await sleeper('sleepy-lamp', 'Lightbulb');
    await sleeper('sleepy-fan', 'Switch');
    ({ client: controller } = await pair(hub.info.bridges[0]!.port!));
    await eventually(async () => (await controller.getAccessories()).accessories.length === 3, 10_000, 'two bridged accessories');
    await eventually(() => asleep(['sleepy-lamp', 'sleepy-fan']), 10_000, 'both devices asleep');
  });

  after(async () => {
    await controller?.close().catch(() => {});
    for (const c of clients) c.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('shows the written value while the device sleeps, delivers it when it wakes, and clears the retained /set once it confirms', async () => {
    const id = characteristicId(await controller.getAccessories(), 'sleepy-lamp', 'Lightbulb', 'On')!;
    const written = await controller.setCharacteristics({ [id]: true });
    assert.ok(
      Object.values(written.characteristics ?? {}).every((c) => !(c as { status?: number }).status),
      JSON.stringify(written),
    );
    // Past the confirmation timeout, still asleep: the write waits, HomeKit shows it.
    await new Promise((r) => setTimeout(r, CONFIRM_MS * 2.5));
    assert.ok(on(await read(id)), 'the written value is shown while the device sleeps');
    assert.doesNotMatch(hub.output(), /did not confirm On = true/);
    assert.equal(await retainedSet('sleepy-lamp', 'Lightbulb'), '1', 'the broker keeps the write for the sleeping device');

    const { device, sets } = await wake('sleepy-lamp');
    await eventually(() => sets.length > 0, 5000, 'the write to arrive at the woken device');
    assert.deepEqual(sets[0], { value: '1', retained: true });
    await device.publishAsync('HomeKit/sleepy-lamp/Lightbulb/On', '1', { qos: 1, retain: true });
    await eventually(async () => (await retainedSet('sleepy-lamp', 'Lightbulb')) === undefined, 10_000, 'the retained /set to be cleared');
    assert.ok(on(await read(id)), 'confirmed');
    assert.doesNotMatch(hub.output(), /did not confirm On = true/);
  });

  it('reverts a write the woken device does not confirm, a confirmation timeout after its wake, and clears the stale /set', async () => {
    const id = characteristicId(await controller.getAccessories(), 'sleepy-fan', 'Switch', 'On')!;
    await controller.setCharacteristics({ [id]: true });
    await new Promise((r) => setTimeout(r, CONFIRM_MS * 2.5));
    assert.ok(on(await read(id)), 'still shown while asleep');

    const { device } = await wake('sleepy-fan');
    const wokeAt = Date.now();
    await device.publishAsync('HomeKit/sleepy-fan/$state', 'online', { qos: 1, retain: true });
    await eventually(async () => !on(await read(id)), 10_000, 'the value to revert after the wake');
    assert.ok(Date.now() - wokeAt >= CONFIRM_MS * 0.9, `reverted ${Date.now() - wokeAt} ms after the wake: the timeout counts from the wake`);
    await hub.printed(/did not confirm On = true/);
    await eventually(async () => (await retainedSet('sleepy-fan', 'Switch')) === undefined, 10_000, 'the stale retained /set to be cleared');
  });
});
