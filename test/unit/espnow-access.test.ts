/**
 * [E-10] Who an ESP-NOW gateway speaks for, on a real SQLite store: only its paired peripherals' device
 * spaces, only while its account is the one that was paired (removed, or registered again under the
 * same name: no one), and a paired peripheral's id may not log in.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EspNowAccess } from '../../src/security/espnow-access.js';
import { AccountStore } from '../../src/store/account-store.js';
import { openDatabase } from '../../src/store/database.js';
import { SqliteEngine } from '../../src/store/engine/sqlite-engine.js';
import { EspNowPairings } from '../../src/store/espnow-pairings.js';

describe('ESP-NOW gateway rights', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-espnow-'));
  const engine = new SqliteEngine(openDatabase(join(dir, 'mqttkit.db')));
  const accounts = new AccountStore(engine);
  let pairings: EspNowPairings;
  let access: EspNowAccess;
  const createdAt = async (name: string) => (await accounts.get(name))!.createdAt;
  before(async () => {
    pairings = await EspNowPairings.load(engine);
    access = new EspNowAccess(pairings, accounts);
    await accounts.create('gw', 'device', 'active', 'hash');
    await accounts.create('other', 'device', 'active', 'hash');
  });
  after(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lets a gateway publish and subscribe in its peripherals' spaces and nowhere else", async () => {
    await pairings.pair('p1', 'gw', await createdAt('gw'));
    for (const topic of ['HomeKit/p1/TemperatureSensor/CurrentTemperature', 'HomeKit/p1/$state', 'stat/p1/Log'])
      assert.ok(await access.mayPublish('gw', topic), topic);
    for (const topic of ['HomeKit/p1', 'HomeKit/p2/Switch/On', 'HomeKit/p10/Switch/On', 'cmnd/p1/OTA', 'p1/OTA'])
      assert.ok(!(await access.mayPublish('gw', topic)), topic);
    for (const filter of ['HomeKit/p1/#', 'HomeKit/p1/+/+/set']) assert.ok(await access.maySubscribe('gw', filter), filter);
    for (const filter of ['#', 'HomeKit/#', 'HomeKit/+/#', 'HomeKit/p2/#']) assert.ok(!(await access.maySubscribe('gw', filter)), filter);
    assert.ok(!(await access.mayPublish('other', 'HomeKit/p1/Switch/On')), 'another device is no gateway of p1');
    assert.deepEqual(await access.speaksFor('gw'), ['p1']);
  });

  it("refuses a login under a paired peripheral's id, and keeps the pairing across a reopened store", async () => {
    assert.match(access.loginRefusal('p1') ?? '', /ESP-NOW peripheral of gateway gw/);
    assert.equal(access.loginRefusal('gw'), undefined);
    assert.deepEqual(
      (await EspNowPairings.load(engine)).list().map((p) => [p.peripheral, p.gateway]),
      [['p1', 'gw']],
    );
  });

  it('a pending or removed gateway account speaks for no one; the same name registered again is another gateway', async () => {
    await accounts.setStatus('gw', 'pending');
    assert.deepEqual(await access.speaksFor('gw'), []);
    await accounts.setStatus('gw', 'active');
    assert.deepEqual(await access.speaksFor('gw'), ['p1']);
    await accounts.remove('gw');
    assert.deepEqual(await access.speaksFor('gw'), []);
    await new Promise((r) => setTimeout(r, 5)); // a new account: another creation time
    await accounts.create('gw', 'device', 'active', 'hash');
    assert.deepEqual(await access.speaksFor('gw'), [], 'the pairing names the account as it was');
    assert.ok(!(await access.mayPublish('gw', 'HomeKit/p1/Switch/On')));
  });

  it('unpairing and removing a gateway end its rights', async () => {
    await pairings.pair('p2', 'other', await createdAt('other'));
    await pairings.pair('p3', 'other', await createdAt('other'));
    assert.deepEqual((await access.speaksFor('other')).sort(), ['p2', 'p3']);
    await pairings.unpair('p2');
    assert.deepEqual(await access.speaksFor('other'), ['p3']);
    assert.equal(access.loginRefusal('p2'), undefined);
    assert.deepEqual(await pairings.removeGateway('other'), ['p3']);
    assert.deepEqual(await access.speaksFor('other'), []);
    assert.deepEqual(
      (await EspNowPairings.load(engine)).list().map((p) => p.peripheral),
      ['p1'],
    );
  });
});
