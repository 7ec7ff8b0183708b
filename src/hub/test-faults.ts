/**
 * Test-only (MQTTKIT_TEST_FAULTS=1, never set in production): a device whose id starts with
 * `test-fault-` provokes one fault of each kind when it is added — an event listener that throws,
 * a promise rejection nobody handles, an exception nobody catches — so an end-to-end test can prove
 * the hub logs and counts them and keeps serving, now that no known path through the public surface
 * produces them.
 */
import type { EventBus } from '../core/events.js';

export function installTestFaults(bus: EventBus, env: NodeJS.ProcessEnv = process.env): () => void {
  if (env.MQTTKIT_TEST_FAULTS !== '1') return () => {};
  return bus.on('device:added', (device) => {
    if (!device.id.startsWith('test-fault-')) return;
    void Promise.reject(new Error(`test fault: a rejection nobody handles (${device.id})`));
    setImmediate(() => {
      throw new Error(`test fault: an exception nobody catches (${device.id})`);
    });
    throw new Error(`test fault: a listener that throws (${device.id})`);
  });
}
