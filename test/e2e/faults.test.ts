/**
 * The last line of defence: an event listener that throws, a promise rejection nobody handles and an
 * exception nobody catches are logged with their stack, counted in /api/metrics, and survived.
 * No known path through the public surface produces them any more, so the hub's test-only hook
 * (MQTTKIT_TEST_FAULTS=1: a device named `test-fault-…` provokes one of each) stands in for the next bug.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cli, connectAdmin } from '../helpers/mqtt-device.js';

describe('faults the hub survives', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let admin: MqttClient;
  let token: string;

  const api = async <T>(path: string): Promise<T> => {
    const response = await fetch(`http://127.0.0.1:${hub.info.httpPort}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return (await response.json()) as T;
  };

  before(async () => {
    hub = await startHub({ env: { MQTTKIT_TEST_FAULTS: '1' } });
    token = (JSON.parse(cli(['token', 'create', 'faults', '--json', '--data-dir', hub.dataDir]).stdout) as { token: string }).token;
    admin = await connectAdmin(hub.info.mqtt.address, 'tester', addAdmin(hub.dataDir, 'tester'));
    admin.on('error', () => {});
  });
  after(async () => {
    admin?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('logs and counts a listener error, an unhandled rejection and an uncaught exception, and keeps serving', async () => {
    const zero = await api<{ faults?: unknown }>('/api/metrics');
    assert.deepEqual(zero.faults, { unhandledRejections: 0, uncaughtExceptions: 0, listenerErrors: 0 });

    await admin.publishAsync('HomeKit/test-fault-1/Switch/On', '1', { qos: 1 });
    const faults = await eventually(
      async () => {
        const { faults: now } = await api<{ faults: Record<string, number> }>('/api/metrics');
        return Object.values(now).every((n) => n >= 1) && now;
      },
      10_000,
      'all three faults counted',
    );
    assert.deepEqual(faults, { unhandledRejections: 1, uncaughtExceptions: 1, listenerErrors: 1 });
    assert.equal(hub.child.exitCode, null, 'the hub is still running');

    // The log names each fault, with its stack and the counts (the hub's stdout may trail its metrics).
    const log = await eventually(
      () => {
        const text = hub.output();
        return /uncaught exception \(the hub keeps running\)/.test(text) && /unhandled promise rejection \(the hub keeps running\)/.test(text) && text;
      },
      10_000,
      'the three faults in the log',
    );
    assert.match(log, /event listener failed \(the hub keeps running\): test fault: a listener that throws \(test-fault-1\)/);
    assert.match(log, /unhandled promise rejection \(the hub keeps running\): test fault: a rejection nobody handles/);
    assert.match(log, /uncaught exception \(the hub keeps running\): test fault: an exception nobody catches/);
    assert.match(log, /"event":"device:added"/);
    assert.match(log, /"stack":"Error: test fault: a listener that throws \(test-fault-1\)\\n +at [^"]*test-faults\.[jt]s/, 'with the stack');
    assert.match(log, /"faults":\{"unhandledRejections":\d+,"uncaughtExceptions":\d+,"listenerErrors":\d+\}/);

    // And it still serves: a device's value after the faults arrives as before.
    await admin.publishAsync('HomeKit/after-fault/Lightbulb/On', '1', { qos: 1 });
    await eventually(async () => (await api<Array<{ id: string }>>('/api/devices')).some((d) => d.id === 'after-fault'), 10_000, 'the next device');
    assert.equal(hub.child.exitCode, null);
  });
});
