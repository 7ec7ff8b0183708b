/**
 * Who is online (finding 15) and which services one accessory can hold (finding 8), in the registry
 * alone: [P-8], [P-19], [P-20].
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceRecord } from '../../src/core/device.js';
import { EventBus } from '../../src/core/events.js';
import { ingest } from '../../src/core/ingest.js';
import { DeviceRegistry } from '../../src/core/registry.js';
import { HapCatalog } from '../../src/homekit/catalog.js';

const catalog = new HapCatalog();

function setup() {
  let now = 1_000_000;
  const bus = new EventBus((event, error) => {
    throw new Error(`listener for ${event} failed: ${String(error)}`);
  });
  const registry = new DeviceRegistry(bus, catalog, { writeTimeoutMs: 1000, now: () => now });
  const announced: string[] = [];
  bus.on('device:announced', (d) => announced.push(d.id));
  const send = (topic: string, payload: string, live = true) => ingest(registry, { topic, payload: Buffer.from(payload), live });
  return { registry, send, announced, advance: (ms: number) => (now += ms), now: () => now };
}

function record(id: string, extra: Partial<DeviceRecord> = {}): DeviceRecord {
  return { id, meta: {}, state: 'online', lastSeen: 1_000_000, createdAt: 1, services: [{ service: 'Switch', index: 0, values: { On: true } }], ...extra };
}

describe('services one HomeKit accessory can hold [P-8]', () => {
  it('refuses an unindexed service after indexed ones of its type, saying to use indexes', () => {
    const { registry, send } = setup();
    assert.ok(send('HomeKit/relay/Switch/1/On', '1').ok);
    const refused = send('HomeKit/relay/Switch/On', '1');
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.match(refused.error, /Switch without an index cannot join .*Switch 1.*Switch\/2/);
    assert.deepEqual(
      registry.get('relay')!.services.map((s) => s.index),
      [1],
    );
  });

  it('still takes indexed services after an unindexed one (HAP-NodeJS can hold them)', () => {
    const { registry, send } = setup();
    assert.ok(send('HomeKit/relay/Switch/On', '1').ok);
    assert.ok(send('HomeKit/relay/Switch/1/On', '1').ok);
    assert.ok(send('HomeKit/relay/Switch/On', '0').ok, 'an existing service takes values as before');
    assert.deepEqual(
      registry.get('relay')!.services.map((s) => s.index),
      [0, 1],
    );
  });

  it('treats two names of one HomeKit type as one type', () => {
    const { send } = setup();
    assert.ok(send('HomeKit/tv/Speaker/Mute', '0').ok);
    const alias = send('HomeKit/tv/TelevisionSpeaker/Mute', '0');
    assert.equal(alias.ok, false);
    if (!alias.ok) assert.match(alias.error, /same HomeKit service type as Speaker/);
    assert.ok(send('HomeKit/tv/TelevisionSpeaker/1/Mute', '0').ok);
  });
});

describe('presence [P-19] [P-20]', () => {
  it('takes an online device offline when its connection closes, but leaves a sleeper asleep', () => {
    const { registry, send } = setup();
    send('HomeKit/a/Switch/On', '1');
    send('HomeKit/s/TemperatureSensor/CurrentTemperature', '20');
    send('HomeKit/s/$state', 'sleeping 600');
    registry.connectionClosed('a');
    registry.connectionClosed('s');
    registry.connectionClosed('unknown');
    assert.equal(registry.get('a')!.state, 'offline');
    assert.equal(registry.get('s')!.state, 'sleeping');
    send('HomeKit/a/Switch/On', '0');
    assert.equal(registry.get('a')!.state, 'online', 'speaking again brings it back');
  });

  it('takes a device offline after 1.5 keepalives of silence; any live message resets the clock', () => {
    const { registry, send, advance, announced } = setup();
    send('HomeKit/k/$state', 'online');
    assert.ok(send('HomeKit/k/$keepalive', '2').ok);
    assert.equal(registry.get('k')!.keepalive, 2);
    advance(2900);
    assert.deepEqual(registry.checkPresence(), []);
    send('HomeKit/k/$keepalive', '2'); // the heartbeat
    advance(2900);
    assert.deepEqual(registry.checkPresence(), []);
    advance(200);
    assert.deepEqual(registry.checkPresence(), ['k']);
    assert.equal(registry.get('k')!.state, 'offline');
    assert.deepEqual(announced, ['k'], 'a heartbeat is no reconnection');
    send('HomeKit/k/$keepalive', '2');
    assert.equal(registry.get('k')!.state, 'online');
  });

  it('leaves devices without a keepalive to their $state, and a new session starts without one', () => {
    const { registry, send, advance } = setup();
    send('HomeKit/old/Switch/On', '1');
    send('HomeKit/k/$keepalive', '5');
    send('HomeKit/k/$state', 'online'); // reconnected firmware that promises nothing
    advance(3_600_000);
    assert.deepEqual(registry.checkPresence(), []);
    assert.equal(registry.get('k')!.keepalive, undefined);
    send('HomeKit/k/$keepalive', '0');
    assert.equal(registry.get('k')!.keepalive, undefined);
  });

  it("refuses keepalives that are not whole seconds within MQTT's range", () => {
    const { send } = setup();
    for (const bad of ['-1', '1.5', 'soon', '65536', '30 s']) {
      const result = send('HomeKit/k/$keepalive', bad);
      assert.equal(result.ok, false, bad);
      if (!result.ok) assert.match(result.error, /whole seconds 1-65535/);
    }
  });

  it('does not let a retained `online` revive a device past its keepalive', () => {
    const { registry, send, advance } = setup();
    send('HomeKit/k/$state', 'online');
    send('HomeKit/k/$keepalive', '10');
    advance(60_000);
    registry.checkPresence();
    send('HomeKit/k/$state', 'online', false);
    assert.equal(registry.get('k')!.state, 'offline');
  });

  it('restores no device online when none can be connected; sleepers stay asleep', () => {
    const { registry } = setup();
    const outcome = registry.restore([record('a'), record('s', { state: 'sleeping' }), record('o', { state: 'offline' })], { noneConnected: true });
    assert.deepEqual(outcome.changed, ['a']);
    assert.deepEqual(
      ['a', 's', 'o'].map((id) => registry.get(id)!.state),
      ['offline', 'sleeping', 'offline'],
    );
  });

  it('restores a device past its keepalive offline, others as saved (external broker)', () => {
    const { registry } = setup();
    registry.restore([record('late', { keepalive: 10, lastSeen: 1_000_000 - 60_000 }), record('fresh', { keepalive: 10 }), record('plain')]);
    assert.deepEqual(
      ['late', 'fresh', 'plain'].map((id) => registry.get(id)!.state),
      ['offline', 'online', 'online'],
    );
  });
});

describe('stored records the hub cannot use', () => {
  it('holds them aside, refuses their input with a way out, and lets them be removed', () => {
    const { registry, send } = setup();
    const outcome = registry.restore([record('good'), { ...record('broken'), services: 'nope' }, { nothing: true }]);
    assert.deepEqual(
      outcome.held.map((h) => h.id),
      ['broken', '(no id)'],
    );
    assert.match(outcome.held[0]!.problem, /services/);
    assert.equal(registry.get('broken'), undefined);
    const refused = send('HomeKit/broken/Switch/On', '1');
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.match(refused.error, /cannot use .*kept untouched.*mqttkit device remove broken/);
    assert.equal(registry.get('broken'), undefined, 'nothing replaces the held record');
    assert.ok(registry.remove('broken', 'test'));
    assert.ok(send('HomeKit/broken/Switch/On', '1').ok, 'after removal the device starts afresh');
    assert.equal(registry.get('good')!.services.length, 1);
  });
});
