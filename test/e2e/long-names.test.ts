/**
 * Issue 10, finding 7: an unknown 60 KB service name cost ~380 ms of CPU (the did-you-mean distance) and
 * wrote a 60 KB log line. Names are bounded before any work ([P-4]) and every log line is bounded.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { connectDevice } from '../helpers/mqtt-device.js';
import { cpuMs } from '../helpers/proc.js';

/** Far below the 60 KB of the attack, far above any line the hub writes on its own. */
const MAX_LINE = 8 * 1024;

describe('long names from a device', { timeout: 120_000 }, () => {
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('refuses 60 KB names and levels quickly, with short errors and log lines, and keeps serving', async (t) => {
    hub = await startHub({ args: ['--log-level', 'debug'] });
    const url = hub.info.mqtt.address;
    const device = await connectDevice(url, 'long-1');
    const errors: string[] = [];
    device.on('message', (topic, payload) => {
      if (topic === 'HomeKit/long-1/$error') errors.push(payload.toString());
    });
    await device.subscribeAsync('HomeKit/long-1/$error', { qos: 1 });

    const huge = (letter: string, i: number) => letter.repeat(60_000) + String.fromCharCode(65 + i); // letters only: a valid-looking name
    const topics = [
      ...Array.from({ length: 8 }, (_, i) => `HomeKit/long-1/${huge('S', i)}/On`), // unknown service type
      ...Array.from({ length: 8 }, (_, i) => `HomeKit/long-1/Switch/${huge('O', i)}`), // unknown characteristic
      `HomeKit/long-1/$${huge('n', 0)}`, // unknown field
      `HomeKit/long-1/Switch/${'7'.repeat(60_000)}/On`, // a 60 KB level
    ];
    const before = cpuMs(hub.child.pid!);
    for (const topic of topics) await device.publishAsync(topic, '1', { qos: 1 });
    await eventually(() => errors.length >= topics.length, 20_000, `${topics.length} refusals on $error (got ${errors.length})`);
    const spent = cpuMs(hub.child.pid!) - before;
    t.diagnostic(`the hub spent ${spent} ms of CPU on ${topics.length} refusals`);
    // Unbounded, the 8 unknown 60 KB service names alone cost 1.5-2.5 s of edit distance here; bounded,
    // all 18 refusals take ~30 ms (moving 60 KB through MQTT). CPU time, not wall time: load elsewhere
    // on the machine does not inflate it much, and the bound leaves a wide margin either way.
    assert.ok(spent < 1000, `the hub spent ${spent} ms of CPU on ${topics.length} refusals`);
    for (const error of errors) assert.ok(error.length < 1024, `a $error of ${error.length} characters: ${error.slice(0, 120)}…`);
    assert.match(errors[0]!, /too long/);

    // Still serving, and still helpful for a real typo.
    await device.publishAsync('HomeKit/long-1/Switch/Onn', '1', { qos: 1 });
    await eventually(() => errors.some((e) => e.includes("did you mean 'On'")), 5000, 'a did-you-mean for a short typo');
    assert.equal(hub.child.exitCode, null);
    const lines = hub.output().split('\n');
    const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
    assert.ok(longest.length < MAX_LINE, `a log line of ${longest.length} characters: ${longest.slice(0, 200)}…`);
    await device.endAsync();
  });
});
