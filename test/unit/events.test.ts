/** The event bus: a listener's failure, thrown or rejected, is reported and does not stop the others. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceRecord } from '../../src/core/device.js';
import { EventBus } from '../../src/core/events.js';

describe('event bus', () => {
  it('reports a listener that throws and one whose promise rejects, and still calls the others', async () => {
    const failures: Array<[string, string]> = [];
    const bus = new EventBus((event, error) => failures.push([event, (error as Error).message]));
    const seen: string[] = [];
    bus.on('device:added', () => {
      throw new Error('sync bug');
    });
    bus.on('device:added', async () => {
      await Promise.resolve();
      throw new Error('async bug');
    });
    bus.on('device:added', (device) => seen.push(device.id));
    bus.emit('device:added', { id: 'lamp' } as DeviceRecord);
    assert.deepEqual(seen, ['lamp']);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(failures, [
      ['device:added', 'sync bug'],
      ['device:added', 'async bug'],
    ]);
  });
});
