/**
 * [E-10] Who an ESP-NOW gateway speaks for, on a real SQLite store: only its paired peripherals' device
 * spaces, only while its account is the one that was paired (removed, or registered again under the
 * same name: no one), and a paired peripheral's id may not log in.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EspNowAccess } from '../../src/security/espnow-access.js';
import { AccountStore } from '../../src/store/account-store.js';
import { openDatabase } from '../../src/store/database.js';
import { EspNowPairings } from '../../src/store/espnow-pairings.js';

describe('ESP-NOW gateway rights', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-espnow-'));
  const db = openDatabase(join(dir, 'mqttkit.db'));
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const accounts = new AccountStore(db);
  const pairings = new EspNowPairings(db);
  const access = new EspNowAccess(pairings, accounts);
  accounts.create('gw', 'device', 'active', 'hash');
  accounts.create('other', 'device', 'active', 'hash');

  it("lets a gateway publish and subscribe in its peripherals' spaces and nowhere else", () => {
    pairings.pair('p1', 'gw', accounts.get('gw')!.createdAt);
    for (const topic of ['HomeKit/p1/TemperatureSensor/CurrentTemperature', 'HomeKit/p1/$state', 'stat/p1/Log'])
      assert.ok(access.mayPublish('gw', topic), topic);
    for (const topic of ['HomeKit/p1', 'HomeKit/p2/Switch/On', 'HomeKit/p10/Switch/On', 'cmnd/p1/OTA', 'p1/OTA'])
      assert.ok(!access.mayPublish('gw', topic), topic);
    for (const filter of ['HomeKit/p1/#', 'HomeKit/p1/+/+/set']) assert.ok(access.maySubscribe('gw', filter), filter);
    for (const filter of ['#', 'HomeKit/#', 'HomeKit/+/#', 'HomeKit/p2/#']) assert.ok(!access.maySubscribe('gw', filter), filter);
    assert.ok(!access.mayPublish('other', 'HomeKit/p1/Switch/On'), 'another device is no gateway of p1');
    assert.deepEqual(access.speaksFor('gw'), ['p1']);
  });

  it("refuses a login under a paired peripheral's id, and keeps the pairing across a reopened store", () => {
    assert.match(access.loginRefusal('p1') ?? '', /ESP-NOW peripheral of gateway gw/);
    assert.equal(access.loginRefusal('gw'), undefined);
    assert.deepEqual(
      new EspNowPairings(db).list().map((p) => [p.peripheral, p.gateway]),
      [['p1', 'gw']],
    );
  });

  it('a pending or removed gateway account speaks for no one; the same name registered again is another gateway', async () => {
    accounts.setStatus('gw', 'pending');
    assert.deepEqual(access.speaksFor('gw'), []);
    accounts.setStatus('gw', 'active');
    assert.deepEqual(access.speaksFor('gw'), ['p1']);
    accounts.remove('gw');
    assert.deepEqual(access.speaksFor('gw'), []);
    await new Promise((r) => setTimeout(r, 5)); // a new account: another creation time
    accounts.create('gw', 'device', 'active', 'hash');
    assert.deepEqual(access.speaksFor('gw'), [], 'the pairing names the account as it was');
    assert.ok(!access.mayPublish('gw', 'HomeKit/p1/Switch/On'));
  });

  it('unpairing and removing a gateway end its rights', () => {
    pairings.pair('p2', 'other', accounts.get('other')!.createdAt);
    pairings.pair('p3', 'other', accounts.get('other')!.createdAt);
    assert.deepEqual(access.speaksFor('other').sort(), ['p2', 'p3']);
    pairings.unpair('p2');
    assert.deepEqual(access.speaksFor('other'), ['p3']);
    assert.equal(access.loginRefusal('p2'), undefined);
    assert.deepEqual(pairings.removeGateway('other'), ['p3']);
    assert.deepEqual(access.speaksFor('other'), []);
    assert.deepEqual(
      new EspNowPairings(db).list().map((p) => p.peripheral),
      ['p1'],
    );
  });
});
