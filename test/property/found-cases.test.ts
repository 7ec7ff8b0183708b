/**
 * Cases the property tests (messages.test.ts, kill-loop.test.ts) found, kept as fixed tests so they
 * stay fixed. Each names the finding of issue 10 it belongs to, or says "new". Scenario cases run
 * through the same runner and invariants as the property test; the scenario is the shrunk one.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { isValidHapName } from '../helpers/hap-invariants.js';
import { characteristicId, pair, reconnect } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { connectDevice } from '../helpers/mqtt-device.js';
import { disposeTemplate, runScenario } from './hub-session.js';
import type { Message, Scenario } from './scenario.js';

const say = (from: string, topic: string, payload: string | Uint8Array, retain = false): Message => ({ from, topic, payload, retain });

describe('cases found by the property tests', { timeout: 120_000 }, () => {
  after(() => disposeTemplate());

  // found by property test (messages.test.ts): known finding 8. One device publishes a service type
  // both indexed and unindexed: the running hub logs "event listener failed" (Cannot add a Service
  // with the same UUID ...), and the restart after it fails.
  it('Lightbulb/1/On then Lightbulb/On: the hub keeps a valid accessory and starts again (finding 8)', async () => {
    await runScenario({
      devices: ['LAMP', 'esp8266_12345678'],
      steps: [
        {
          kind: 'publish',
          messages: [
            say('esp8266_12345678', 'HomeKit/esp8266_12345678/Lightbulb/1/On', '1'),
            say('esp8266_12345678', 'HomeKit/esp8266_12345678/Lightbulb/On', '1'),
          ],
        },
        { kind: 'restart', signal: 'SIGTERM' },
        { kind: 'publish', messages: [say('LAMP', 'HomeKit/LAMP/Switch/On', '1')] },
      ],
    });
  });

  // found by property test (messages.test.ts): known finding 9. A per-service Name reaches HomeKit
  // as published ("AA==", markup, bidi controls), breaking the HomeKit name rule.
  it('per-service Name is cleaned like $name (finding 9)', async () => {
    await runScenario({
      devices: ['esp8266_12345678', 'LAMP'],
      steps: [
        {
          kind: 'publish',
          messages: [
            say('esp8266_12345678', 'HomeKit/esp8266_12345678/Switch/Name', 'AA=='),
            say('LAMP', 'HomeKit/LAMP/Switch/1/Name', '<b>Kitchen\u202egnp.exe</b>'),
            say('LAMP', 'HomeKit/LAMP/Switch/1/On', '1'),
          ],
        },
      ],
    });
  });

  // found by property test (messages.test.ts): new finding. HAP-NodeJS ignores a one-character
  // SerialNumber ("HomeKit will reject this accessory") and leaves "Default-SerialNumber", so a
  // device with a one-character id (valid per [P-2]) shows with a serial HomeKit rejects, and two
  // such devices share one serial. The hub may instead refuse one-character ids at CONNECT.
  it('a one-character device id gets a serial number HomeKit accepts, or is refused (new)', async () => {
    const scenario: Scenario = {
      devices: ['-', 'x', 'esp8266_12345678'],
      steps: [
        {
          kind: 'publish',
          messages: [
            say('-', 'HomeKit/-/Switch/On', '1'),
            say('x', 'HomeKit/x/Switch/On', '1'),
            say('esp8266_12345678', 'HomeKit/esp8266_12345678/Switch/On', '1'),
          ],
        },
      ],
    };
    await runScenario(scenario);
  });

  // found by property test (messages.test.ts): new finding, next to finding 9. `$name` is cut to 64
  // characters counted as code points, but HAP-NodeJS counts maxLen in UTF-16 units: a name of
  // letters beyond the BMP (here 'a' + 33 x U+1D400) reaches HAP-NodeJS with 67 units, and HAP-NodeJS
  // cuts it at 64 with a warning, through the middle of a surrogate pair. The Name that controllers
  // get ends in a lone surrogate: not valid UTF-8, and not a valid HomeKit name.
  it('a $name of letters beyond the BMP reaches HomeKit whole and within 64 units (new)', async () => {
    await runScenario({
      devices: ['esp8266_12345678', 'relay-4ch'],
      steps: [
        {
          kind: 'publish',
          messages: [
            say('esp8266_12345678', 'HomeKit/esp8266_12345678/$name', `a${'𝐀'.repeat(33)}`),
            say('esp8266_12345678', 'HomeKit/esp8266_12345678/Switch/On', '1'),
          ],
        },
      ],
    });
  });

  // found by property test (messages.test.ts, its "an aid is never handed to another device" check;
  // shrunk: Switch/1/On, `$state " "`, then another device's Switch/On): new finding. When the
  // last device on a bridge is removed, HAP-NodeJS's id purge also drops its "next AID" counter, so
  // the next new device gets the removed one's aid (2), and, with the same services, the same iids.
  // A controller that missed the removal takes the new device for the old one: its room, name and
  // automations (stored by aid.iid) now act on the new device.
  it("a removed device's aid is not handed to the next new device (new)", async () => {
    await runScenario({
      devices: ['devA', 'devB'],
      steps: [
        { kind: 'publish', messages: [say('devA', 'HomeKit/devA/Switch/On', '1')] },
        { kind: 'publish', messages: [say('devA', 'HomeKit/devA/$state', 'removed')] },
        { kind: 'publish', messages: [say('devB', 'HomeKit/devB/Switch/On', '1')] },
      ],
    });
  });

  // found by property test (messages.test.ts, "a graceful restart changes no value HomeKit shows"):
  // new finding, minor. A service's Name is made from the device's name when the service is added;
  // a later `$name` renames the accessory but not its services, until a restart rebuilds them:
  // "esp8266 12345678 Switch 1" while running, "Living room Switch 1" after a plain restart.
  it('a restart does not rename services: they follow $name at once, or never (new)', async () => {
    await runScenario({
      devices: ['esp8266_12345678', 'relay-4ch'],
      steps: [
        { kind: 'publish', messages: [say('esp8266_12345678', 'HomeKit/esp8266_12345678/Switch/1/On', '1')] },
        { kind: 'publish', messages: [say('esp8266_12345678', 'HomeKit/esp8266_12345678/$name', 'Living room')] },
        { kind: 'restart', signal: 'SIGTERM' },
      ],
    });
  });

  // found by property test (messages.test.ts, seed -744506549): new finding. A device names a service
  // itself with a single letter ('ﷺ'); the name rule pads it with the default ('toString ﷺ'). After a
  // new $name the running hub kept the old padding, a restart showed 'Bob's lamp ﷺ': names changed
  // on restart.
  it('a device-published one-letter Name follows a new $name at once, as a restart would show it (new)', async () => {
    await runScenario({
      devices: ['toString'],
      steps: [
        { kind: 'publish', messages: [say('toString', 'HomeKit/toString/Switch/Name', 'ﷺ', true), say('toString', 'HomeKit/toString/Outlet/3/On', '1')] },
        { kind: 'publish', messages: [say('toString', 'HomeKit/toString/$name', "Bob's lamp", true)] },
        { kind: 'restart', signal: 'SIGTERM' },
      ],
    });
  });

  // found by property test (kill-loop.test.ts): new finding. A device's first value for an optional
  // characteristic (Lightbulb Brightness) adds it to HomeKit with an iid at once, but the value is
  // saved only with the next batched flush (1 s); a kill -9 before that drops the characteristic
  // from the accessory after the restart; when another device then joins (the bridge purges unused
  // ids) and the lamp publishes Brightness again, it comes back with a NEW iid (2.11 -> 2.12 seen):
  // HomeKit scenes and automations that used it break for good.
  describe('an optional characteristic HomeKit has seen survives kill -9 (new)', () => {
    let hub: RunningHub | undefined;
    after(async () => {
      await hub?.stop('SIGKILL');
      if (hub) removeDataDir(hub.dataDir);
    });

    it('keeps Brightness, with its iid, after a kill -9 right after it first appeared, and after it is published again', async () => {
      hub = await startHub();
      const { client, pairing } = await pair(hub.info.bridges[0]!.port!);
      const lamp = await connectDevice(hub.info.mqtt.address, 'lamp1');
      lamp.on('error', () => {});
      await lamp.publishAsync('HomeKit/lamp1/Lightbulb/On', '1', { qos: 1 });
      await lamp.publishAsync('HomeKit/lamp1/Lightbulb/Brightness', '40', { qos: 1 });
      const seen = await eventually(
        async () => characteristicId(await client.getAccessories(), 'lamp1', 'Lightbulb', 'Brightness'),
        5000,
        'Brightness in /accessories',
      );
      await client.close();
      lamp.end(true);

      const dataDir = hub.dataDir;
      await hub.stop('SIGKILL');
      hub = await startHub({ dataDir });
      const controller = reconnect(hub.info.bridges[0]!.port!, pairing);
      const devices = [await connectDevice(hub.info.mqtt.address, 'lamp1'), await connectDevice(hub.info.mqtt.address, 'other1')];
      try {
        const db = await controller.getAccessories();
        const afterKill = characteristicId(db, 'lamp1', 'Lightbulb', 'Brightness');
        // Another device joins, then the lamp reports its brightness again.
        await devices[1]!.publishAsync('HomeKit/other1/Switch/On', '1', { qos: 1 });
        await eventually(async () => characteristicId(await controller.getAccessories(), 'other1', 'Switch', 'On'), 5000, 'the other device in /accessories');
        await devices[0]!.publishAsync('HomeKit/lamp1/Lightbulb/Brightness', '50', { qos: 1 });
        const republished = await eventually(
          async () => characteristicId(await controller.getAccessories(), 'lamp1', 'Lightbulb', 'Brightness'),
          5000,
          'Brightness again',
        );
        assert.deepEqual(
          { afterKill, republished },
          { afterKill: seen, republished: seen },
          'Brightness keeps its aid.iid through kill -9 and when the device publishes it again',
        );
      } finally {
        for (const device of devices) device.end(true);
        await controller.close();
      }
    });
  });

  // found by property test (kill-loop.test.ts, while other hubs ran on the machine): new finding.
  // Two hubs with the same bridge name on one network (the default is "mqttkit" for every install):
  // mDNS (ciao) resolves the conflict by renaming one "mqttkit (2)", and HAP-NodeJS writes that into
  // the bridge's Name characteristic (and saves it with the pairings): a name with parentheses, which
  // breaks HomeKit's name rule. Seen within 0.2 s of the second hub's start.
  describe('two hubs with the same bridge name on one network (new)', () => {
    const hubs: RunningHub[] = [];
    after(async () => {
      for (const hub of hubs) {
        await hub.stop('SIGKILL');
        removeDataDir(hub.dataDir);
      }
    });

    it('both bridges keep a Name that passes the HomeKit name rule', async () => {
      const name = `Twin ${Math.random().toString(36).slice(2, 8)}`;
      hubs.push(await startHub({ args: ['--bridge-name', name] }), await startHub({ args: ['--bridge-name', name] }));
      const controllers = await Promise.all(hubs.map(async (hub) => (await pair(hub.info.bridges[0]!.port!)).client));
      try {
        const bridgeName = async (i: number) => {
          const info = (await controllers[i]!.getAccessories()).accessories.find((a) => a.aid === 1)!.services[0]!;
          return info.characteristics.find((c) => c.description === 'Name')!.value as string;
        };
        // Wait until mDNS has settled the conflict (one bridge renamed), or 5 s without a rename.
        const names = await eventually(
          async () => {
            const current = [await bridgeName(0), await bridgeName(1)];
            return current.some((n) => n !== name) ? current : undefined;
          },
          5000,
          'the mDNS name conflict to settle',
        ).catch(async () => [await bridgeName(0), await bridgeName(1)]);
        assert.deepEqual(
          names.filter((n) => !isValidHapName(n)),
          [],
          `bridge names ${JSON.stringify(names)}: each must pass HAP-NodeJS's name rule`,
        );
      } finally {
        for (const controller of controllers) await controller.close();
      }
    });
  });
});
