/** One device as one HAP-NodeJS accessory (real HAP-NodeJS objects): built all or nothing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Service } from 'hap-nodejs';
import type { DeviceRecord } from '../../src/core/device.js';
import { HapCatalog } from '../../src/homekit/catalog.js';
import { DeviceAccessory } from '../../src/homekit/device-accessory.js';

const catalog = new HapCatalog();
const hooks = { read: () => undefined, write: () => ({ ok: true }) };

function device(services: DeviceRecord['services']): DeviceRecord {
  return { id: 'relay', meta: { name: 'Relay' }, state: 'online', lastSeen: 0, createdAt: 0, services };
}

describe('device accessory', () => {
  it('leaves the accessory as it was when HAP-NodeJS refuses a service, and takes valid ones after', () => {
    const accessory = new DeviceAccessory(device([{ service: 'Switch', index: 1, values: { On: true } }]), catalog, hooks);
    const before = accessory.accessory.services.map((s) => `${s.UUID}/${s.subtype}`);
    assert.throws(() => accessory.addService({ service: 'Switch', index: 0, values: { On: false } }), /same UUID/);
    assert.deepEqual(
      accessory.accessory.services.map((s) => `${s.UUID}/${s.subtype}`),
      before,
      'no half-built service left behind',
    );
    accessory.addService({ service: 'Switch', index: 2, values: { On: false } });
    assert.equal(accessory.accessory.services.filter((s) => s.UUID === Service.Switch.UUID).length, 2);
  });

  it('builds a record the old hub saved indexed-first, unindexed service included', () => {
    const accessory = new DeviceAccessory(
      device([
        { service: 'Switch', index: 1, values: { On: true } },
        { service: 'Switch', index: 0, values: { On: false } },
      ]),
      catalog,
      hooks,
    );
    assert.deepEqual(
      accessory.accessory.services
        .filter((s) => s.UUID === Service.Switch.UUID)
        .map((s) => s.subtype)
        .sort(),
      ['1', undefined],
    );
  });

  it("refuses, whole, a record over HAP-NodeJS's 100 services", () => {
    const services = Array.from({ length: 100 }, (_, i) => ({ service: 'Switch', index: i, values: {} }));
    assert.throws(() => new DeviceAccessory(device(services), catalog, hooks), /more than 100 services/);
  });
});
