/**
 * [S-2] [E-10] The window between a login's check and aedes registering the client: what changes there
 * (an account removed, the id paired as an ESP-NOW peripheral) must hold. The broker, registration,
 * accounts and pairings are the hub's own (SQLite in a temp dir); the test only picks the moment, by
 * acting right after the registration answered.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { EmbeddedBroker } from '../../src/broker/embedded-broker.js';
import { createLogger } from '../../src/log/logger.js';
import { EspNowAccess } from '../../src/security/espnow-access.js';
import { hashPassword } from '../../src/security/password-hash.js';
import { type AuthOutcome, Registration } from '../../src/security/registration.js';
import { AccountStore } from '../../src/store/account-store.js';
import { openSqliteEngine } from '../../src/store/engine/open.js';
import type { SqlEngine } from '../../src/store/engine/sql-engine.js';
import { EspNowPairings } from '../../src/store/espnow-pairings.js';

/** The hub's registration, calling `afterAnswer(id)` right after its answer reaches the broker. */
class Observed extends Registration {
  afterAnswer: (id: string) => void = () => {};
  override authenticate(name: string | undefined, ...rest: [string | undefined, string | undefined, (() => boolean)?]): Promise<AuthOutcome> {
    const answer = super.authenticate(name, ...rest);
    // Queued now, so it runs after the broker's own handler of the answer (attached when this returns).
    queueMicrotask(() => void answer.then(() => name && this.afterAnswer(name)));
    return answer;
  }
}

describe('what changes while a login is checked holds', { timeout: 60_000 }, () => {
  let dir: string;
  let db: SqlEngine;
  let broker: EmbeddedBroker;
  let registration: Observed;
  let accounts: AccountStore;
  let pairings: EspNowPairings;
  const clients: MqttClient[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mqttkit-login-window-'));
    db = openSqliteEngine(join(dir, 'mqttkit.db'));
    const log = createLogger('silent', false);
    accounts = new AccountStore(db);
    pairings = await EspNowPairings.load(db);
    registration = new Observed(accounts, 'open', log);
    broker = await EmbeddedBroker.start({ host: '127.0.0.1', port: 0, registration, espnow: new EspNowAccess(pairings, accounts) }, log);
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await broker.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Connects `id` with a retained last will; resolves with what the client saw within a second. */
  const attempt = async (id: string) => {
    const events: string[] = [];
    const client = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, {
      clientId: id,
      username: id,
      password: `${id}-password`,
      protocolVersion: 4,
      reconnectPeriod: 0,
      will: { topic: `HomeKit/${id}/$state`, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    clients.push(client);
    client.on('connect', (packet) => events.push(`connack ${packet.returnCode}`));
    client.on('error', (error) => events.push(`refused: ${error.message}`));
    client.on('close', () => events.push('closed'));
    await new Promise((r) => setTimeout(r, 1000));
    return events;
  };
  const retained = async (id: string) => {
    const found: string[] = [];
    // aedes' persistence is public in JS but missing from its typings.
    const { persistence } = broker.aedes as unknown as {
      persistence: { createRetainedStreamCombi(patterns: string[]): AsyncIterable<{ topic: string; payload: Buffer }> };
    };
    for await (const packet of persistence.createRetainedStreamCombi([`HomeKit/${id}/#`])) found.push(`${packet.topic}=${packet.payload}`);
    return found;
  };
  const connected = (id: string) => id in (broker.aedes as unknown as { clients: Record<string, unknown> }).clients;

  it('a device removed after its check answered is closed before its CONNACK, and leaves no last will', async () => {
    registration.afterAnswer = (id) => {
      if (id !== 'removed-1') return;
      void accounts.remove(id);
      broker.disconnect(id, { removed: true }); // as the hub's removal does
    };
    const events = await attempt('removed-1');
    assert.ok(!events.includes('connack 0'), `never accepted: ${events.join(', ')}`);
    assert.equal(connected('removed-1'), false);
    assert.deepEqual(await retained('removed-1'), [], 'no retained $state offline: it would make a device of it again');
  });

  it('a device only disconnected after its check answered (a reset) is closed too, its last will published', async () => {
    registration.afterAnswer = (id) => id === 'reset-1' && broker.disconnect(id);
    const events = await attempt('reset-1');
    assert.ok(!events.includes('connack 0'), `never accepted: ${events.join(', ')}`);
    assert.equal(connected('reset-1'), false);
  });

  it('an id paired as an ESP-NOW peripheral while its login was checked is refused: no second voice [E-10]', async () => {
    assert.ok(await accounts.create('gateway-1', 'device', 'active', await hashPassword('gateway-1-password')));
    const gateway = (await accounts.get('gateway-1'))!;
    registration.afterAnswer = (id) => id === 'periph-1' && void pairings.pair('periph-1', 'gateway-1', gateway.createdAt);
    const events = await attempt('periph-1');
    assert.ok(!events.includes('connack 0'), `never accepted: ${events.join(', ')}`);
    assert.equal(connected('periph-1'), false);
  });

  it('a login that completes normally is accepted (the checks above are not a blanket refusal)', async () => {
    registration.afterAnswer = () => {};
    const events = await attempt('plain-1');
    assert.deepEqual(events, ['connack 0']);
    assert.equal(connected('plain-1'), true);
  });
});
