/**
 * [P-21] The embedded broker's view of who listens is fed by every SUBSCRIBE, and each change it
 * reports makes the hub re-check the device (its questions, its jobs). A device subscribing to
 * thousands of its own topics, or SUBSCRIBE/UNSUBSCRIBE in a loop of other topics, must cost the hub
 * nothing: only a change to whether it hears cmnd/<id>/OTA (or <id>/OTA) is reported.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EmbeddedBroker } from '../../src/broker/embedded-broker.js';
import { createLogger } from '../../src/log/logger.js';
import { Registration } from '../../src/security/registration.js';
import { AccountStore } from '../../src/store/account-store.js';
import { openSqliteEngine } from '../../src/store/engine/open.js';
import type { SqlEngine } from '../../src/store/engine/sql-engine.js';
import { eventually } from '../helpers/hub-process.js';
import { connectDevice } from '../helpers/mqtt-device.js';

describe("a device's own subscriptions do not drive the hub's listening checks [P-21]", { timeout: 120_000 }, () => {
  let dir: string;
  let db: SqlEngine;
  let broker: EmbeddedBroker;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mqttkit-listen-bounds-'));
    db = openSqliteEngine(join(dir, 'mqttkit.db'));
    const log = createLogger('silent', false);
    broker = await EmbeddedBroker.start({ host: '127.0.0.1', port: 0, registration: new Registration(new AccountStore(db), 'open', log) }, log);
  });
  after(async () => {
    await broker.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('thousands of unrelated subscriptions and a SUBSCRIBE loop report nothing; cmnd/<id>/OTA still does', async () => {
    const id = 'sub-flood';
    const changes: string[] = [];
    const off = broker.listening.onChange((device) => device === id && changes.push(device));
    const device = await connectDevice(`mqtt://127.0.0.1:${broker.port}`, id);
    device.on('error', () => {});
    try {
      await eventually(() => broker.listening.connected(id), 5000, 'the connection to be seen');
      const opened = changes.length;
      // 2,000 distinct filters of its own, in batches of 100 per SUBSCRIBE packet.
      for (let batch = 0; batch < 20; batch++) {
        await device.subscribeAsync(
          Array.from({ length: 100 }, (_, i) => `HomeKit/${id}/svc${batch}/c${i}/set`),
          { qos: 0 },
        );
      }
      // and a loop of SUBSCRIBE/UNSUBSCRIBE of one topic that is not its command topic
      for (let i = 0; i < 200; i++) {
        await device.subscribeAsync(`cmnd/${id}/other`, { qos: 0 });
        await device.unsubscribeAsync(`cmnd/${id}/other`);
      }
      assert.equal(changes.length - opened, 0, `${changes.length - opened} listening changes reported for subscriptions that do not reach cmnd/${id}/OTA`);
      assert.equal(broker.listening.hears(id, `cmnd/${id}/OTA`), false);
      await device.subscribeAsync(`cmnd/${id}/OTA`, { qos: 1 });
      await eventually(() => broker.listening.hears(id, `cmnd/${id}/OTA`), 5000, 'the device to listen');
      assert.equal(changes.length - opened, 1, 'its command-topic SUBSCRIBE is reported once');
      await device.unsubscribeAsync(`cmnd/${id}/OTA`);
      await eventually(() => !broker.listening.hears(id, `cmnd/${id}/OTA`), 5000, 'the device to stop listening');
      assert.equal(changes.length - opened, 2);
    } finally {
      off();
      await device.endAsync(true);
    }
  });
});
