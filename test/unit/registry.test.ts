import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventBus, type HubEvents } from '../../src/core/events.js';
import { ingest } from '../../src/core/ingest.js';
import { DeviceRegistry, MAX_SERVICES_PER_DEVICE } from '../../src/core/registry.js';
import { HapCatalog } from '../../src/homekit/catalog.js';

const catalog = new HapCatalog();

function setup(writeTimeoutMs = 50) {
  let now = 1_000_000;
  const bus = new EventBus((event, error) => {
    throw new Error(`listener for ${event} failed: ${String(error)}`);
  });
  const registry = new DeviceRegistry(bus, catalog, { writeTimeoutMs, now: () => now });
  const events: Array<[keyof HubEvents, unknown[]]> = [];
  for (const name of ['device:added', 'device:removed', 'device:state', 'service:added', 'value', 'write:requested', 'write:reverted'] as const) {
    bus.on(name, (...args: unknown[]) => events.push([name, args]));
  }
  const send = (topic: string, payload: string | Buffer, live = true) =>
    ingest(registry, { topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, live });
  return { registry, events, send, advance: (ms: number) => (now += ms), now: () => now };
}

describe('device registry', () => {
  it('creates a device on its first valid value and adds services to it', () => {
    const { registry, send, events } = setup();
    assert.ok(send('HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemperature', '20').ok);
    assert.ok(send('HomeKit/esp8266_12345678/HumiditySensor/CurrentRelativeHumidity', '58').ok);
    const device = registry.get('esp8266_12345678')!;
    assert.deepEqual(
      device.services.map((s) => [s.service, s.values]),
      [
        ['TemperatureSensor', { CurrentTemperature: 20 }],
        ['HumiditySensor', { CurrentRelativeHumidity: 58 }],
      ],
    );
    assert.equal(events.filter(([e]) => e === 'device:added').length, 1);
    assert.equal(events.filter(([e]) => e === 'service:added').length, 2);
  });

  it('changes nothing for a refused value, not even creating the device', () => {
    const { registry, send, events } = setup();
    assert.equal(send('HomeKit/new/TemperatureSensor/CurrentTemperature', 'hot').ok, false);
    assert.equal(send('HomeKit/new/Switch/Onn', '1').ok, false);
    assert.equal(registry.size, 0);
    assert.equal(events.length, 0);
    send('HomeKit/new/Switch/On', '1');
    send('HomeKit/new/Switch/On', '7');
    assert.equal(registry.get('new')!.services[0]!.values.On, true);
  });

  it("ignores empty payloads and the hub's own /set and $error topics", () => {
    const { registry, send } = setup();
    assert.deepEqual(send('HomeKit/d/Switch/On', ''), { ok: true, value: 'ignored' });
    assert.deepEqual(send('HomeKit/d/Switch/On/set', '1'), { ok: true, value: 'ignored' });
    assert.deepEqual(send('HomeKit/d/$error', 'x'), { ok: true, value: 'ignored' });
    assert.equal(registry.size, 0);
  });

  it('refuses oversized and binary payloads', () => {
    const { send } = setup();
    const big = send('HomeKit/d/Switch/On', '1'.repeat(2000));
    assert.equal(big.ok, false);
    if (!big.ok) assert.match(big.error, /too large/);
    const binary = send('HomeKit/d/Switch/On', Buffer.from([0xc3, 0x28]));
    assert.equal(binary.ok, false);
    if (!binary.ok) assert.match(binary.error, /not UTF-8/);
  });

  it('tracks $state, and a live message brings an offline device back online', () => {
    const { registry, send } = setup();
    send('HomeKit/d/Switch/On', '1');
    send('HomeKit/d/$state', 'offline');
    assert.equal(registry.get('d')!.state, 'offline');
    assert.equal(registry.read({ deviceId: 'd', service: 'Switch', index: 0, characteristic: 'On' })!.state, 'offline');
    send('HomeKit/d/Switch/On', '0', false); // a retained replay is no sign of life
    assert.equal(registry.get('d')!.state, 'offline');
    send('HomeKit/d/Switch/On', '0');
    assert.equal(registry.get('d')!.state, 'online');
    const bad = send('HomeKit/d/$state', 'asleep');
    assert.equal(bad.ok, false);
    if (!bad.ok) assert.match(bad.error, /not a device state/);
  });

  it('removes a device on $state removed or an empty $state', () => {
    const { registry, send, events } = setup();
    send('HomeKit/a/Switch/On', '1');
    send('HomeKit/b/Switch/On', '1');
    send('HomeKit/a/$state', 'removed');
    send('HomeKit/b/$state', '');
    assert.equal(registry.size, 0);
    assert.equal(events.filter(([e]) => e === 'device:removed').length, 2);
  });

  it('expires silent devices after the TTL, counting sleepers from their wake time', () => {
    const { registry, send, advance } = setup();
    send('HomeKit/awake/TemperatureSensor/CurrentTemperature', '20');
    send('HomeKit/sleepy/TemperatureSensor/CurrentTemperature', '20');
    send('HomeKit/sleepy/$state', 'sleeping 7200');
    assert.equal(registry.get('sleepy')!.state, 'sleeping');
    advance(3_600_000 + 1);
    assert.deepEqual(registry.sweep(3_600_000), ['awake']);
    advance(2 * 3_600_000);
    assert.deepEqual(registry.sweep(3_600_000), ['sleepy']);
  });

  it('refuses a sleep longer than 30 days, which would keep a dead device from ever expiring', () => {
    const { registry, send, advance } = setup();
    send('HomeKit/sleepy/TemperatureSensor/CurrentTemperature', '20');
    const refused = send('HomeKit/sleepy/$state', `sleeping ${'9'.repeat(300)}`);
    assert.ok(!refused.ok);
    assert.match(refused.error, /longer than the longest the hub waits for/);
    assert.ok(refused.error.length < 200, 'the refusal does not echo the whole number');
    assert.equal(registry.get('sleepy')!.state, 'online');
    assert.ok(send('HomeKit/sleepy/$state', 'sleeping 2592000').ok, '30 days is fine');
    advance(31 * 86_400_000);
    assert.deepEqual(registry.sweep(3_600_000), ['sleepy']);
  });

  it('shows a write until confirmed, and reverts it when the device stays silent', async () => {
    const { registry, send, events } = setup(30);
    send('HomeKit/sw/Switch/On', '0');
    const ref = { deviceId: 'sw', service: 'Switch', index: 0, characteristic: 'On' };
    assert.deepEqual(registry.requestWrite(ref, true), { ok: true, value: true });
    assert.equal(registry.read(ref)!.value, true);
    assert.deepEqual(events.find(([e]) => e === 'write:requested')![1], [ref, true]);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(registry.read(ref)!.value, false);
    assert.deepEqual(events.find(([e]) => e === 'write:reverted')![1], [ref, false, true]);

    registry.requestWrite(ref, true);
    send('HomeKit/sw/Switch/On', '1');
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(events.filter(([e]) => e === 'write:reverted').length, 1, 'a confirmed write does not revert');
    assert.equal(registry.read(ref)!.value, true);
  });

  it('refuses writes to offline devices, read-only characteristics and bad values', () => {
    const { registry, send } = setup();
    send('HomeKit/t/TemperatureSensor/CurrentTemperature', '20');
    send('HomeKit/l/Lightbulb/On', '1');
    const readOnly = registry.requestWrite({ deviceId: 't', service: 'TemperatureSensor', index: 0, characteristic: 'CurrentTemperature' }, 5);
    assert.equal(readOnly.ok, false);
    if (!readOnly.ok) assert.match(readOnly.error, /read-only/);
    const range = registry.requestWrite({ deviceId: 'l', service: 'Lightbulb', index: 0, characteristic: 'Brightness' }, 150);
    assert.equal(range.ok, false);
    send('HomeKit/l/$state', 'offline');
    const offline = registry.requestWrite({ deviceId: 'l', service: 'Lightbulb', index: 0, characteristic: 'On' }, false);
    assert.equal(offline.offline, true);
    registry.close();
  });

  it('keeps indexed services apart and caps services per device', () => {
    const { registry, send } = setup();
    send('HomeKit/relay/Switch/1/On', '1');
    send('HomeKit/relay/Switch/2/On', '0');
    assert.deepEqual(
      registry.get('relay')!.services.map((s) => [s.index, s.values.On]),
      [
        [1, true],
        [2, false],
      ],
    );
    for (let i = 3; i <= MAX_SERVICES_PER_DEVICE; i++) assert.ok(send(`HomeKit/relay/Switch/${i}/On`, '1').ok);
    const over = send('HomeKit/relay/Outlet/On', '1');
    assert.equal(over.ok, false);
    if (!over.ok) assert.match(over.error, /99 services/);
  });
});
