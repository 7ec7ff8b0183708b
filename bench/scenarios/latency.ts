/**
 * Scenarios 1 and 2: MQTT publish -> HAP event at the controller (immediate MotionDetected, batched
 * CurrentTemperature), and HAP write -> `/set` at the device; each beside a bare HAP-NodeJS accessory.
 */

import { removeDataDir, startHub } from '../../test/helpers/hub-process.js';
import { connectDevice } from '../../test/helpers/mqtt-device.js';
import { bareAccessory, Controller, findId } from '../homekit-probe.js';
import { latencyRows, now, type Row, type Summary, sleep, summarize } from '../stats.js';

export interface LatencyOptions {
  immediate: number;
  batched: number;
  writes: number;
}

/** The first samples warm up connections and JIT; they are run but not counted. */
const WARM_UP = 3;

/**
 * 10 ms between samples: the device's messages stay under the embedded broker's inflow limit
 * (100 a second, a burst of 500) for 1,000 samples, so the p99 is the 10th worst of 1,000, not the
 * 3rd worst of 300 (one hiccup of the machine moved that by 2 ms from run to run).
 */
async function measure(n: number, once: (i: number) => Promise<number>, gapMs = 10): Promise<Summary> {
  const samples: number[] = [];
  for (let i = 0; i < n + WARM_UP; i++) {
    const sample = await once(i);
    if (i >= WARM_UP) samples.push(sample);
    await sleep(gapMs);
  }
  return summarize(samples);
}

export async function latency(options: LatencyOptions): Promise<Row[]> {
  // The floor: HAP-NodeJS alone.
  const bare = await bareAccessory();
  const floorController = await Controller.pair(bare.port);
  const floorDb = await floorController.client.getAccessories();
  const floorIds = {
    motion: findId(floorDb, 'MotionSensor', 'MotionDetected'),
    temperature: findId(floorDb, 'TemperatureSensor', 'CurrentTemperature'),
    on: findId(floorDb, 'Switch', 'On'),
  };
  await floorController.client.subscribeCharacteristics([floorIds.motion, floorIds.temperature]);
  const floorImmediate = await measure(options.immediate, async (i) => {
    const arrived = floorController.nextEvent(floorIds.motion);
    const t0 = now();
    bare.motion.updateValue(i % 2 === 0);
    return (await arrived) - t0;
  });
  const floorBatched = await measure(options.batched, async (i) => {
    const arrived = floorController.nextEvent(floorIds.temperature);
    const t0 = now();
    bare.temperature.updateValue(20 + (i % 2) + 0.5);
    return (await arrived) - t0;
  });
  const floorWrites = await measure(options.writes, async (i) => {
    const before = bare.onSetTimes.length;
    const t0 = now();
    await floorController.client.setCharacteristics({ [floorIds.on]: i % 2 === 0 });
    return bare.onSetTimes[before]! - t0;
  });
  await floorController.close();
  await bare.stop();

  // mqttkit: a real hub process, an MQTT.js device, the same controller.
  const hub = await startHub({ args: ['--log-level', 'warn'] });
  try {
    const device = await connectDevice(hub.info.mqtt.address, 'bench-dev');
    const base = 'HomeKit/bench-dev';
    await device.publishAsync(`${base}/MotionSensor/MotionDetected`, '0', { qos: 1 });
    await device.publishAsync(`${base}/TemperatureSensor/CurrentTemperature`, '20', { qos: 1 });
    await device.publishAsync(`${base}/Switch/On`, '0', { qos: 1 });
    const controller = await Controller.pair(hub.info.bridges[0]!.port!);
    let db = await controller.client.getAccessories();
    for (let tries = 0; tries < 50 && db.accessories.length < 2; tries++) {
      await sleep(100);
      db = await controller.client.getAccessories();
    }
    const ids = {
      motion: findId(db, 'MotionSensor', 'MotionDetected', 'bench-dev'),
      temperature: findId(db, 'TemperatureSensor', 'CurrentTemperature', 'bench-dev'),
      on: findId(db, 'Switch', 'On', 'bench-dev'),
    };
    await controller.client.subscribeCharacteristics([ids.motion, ids.temperature]);

    const immediate = await measure(options.immediate, async (i) => {
      const arrived = controller.nextEvent(ids.motion);
      const t0 = now();
      device.publish(`${base}/MotionSensor/MotionDetected`, i % 2 === 0 ? '1' : '0', { qos: 0 });
      return (await arrived) - t0;
    });
    const batched = await measure(options.batched, async (i) => {
      const arrived = controller.nextEvent(ids.temperature);
      const t0 = now();
      device.publish(`${base}/TemperatureSensor/CurrentTemperature`, String(20 + (i % 2) + 0.5), { qos: 0 });
      return (await arrived) - t0;
    });

    let setArrived: ((at: number) => void) | undefined;
    await device.subscribeAsync(`${base}/+/+/set`, { qos: 1 });
    device.on('message', (topic, payload) => {
      if (!topic.endsWith('/set')) return;
      setArrived?.(now());
      device.publish(topic.slice(0, -4), payload, { qos: 0 }); // confirm, as a device does
    });
    const writes = await measure(options.writes, async (i) => {
      const arrived = new Promise<number>((resolve) => (setArrived = resolve));
      const t0 = now();
      await controller.client.setCharacteristics({ [ids.on]: i % 2 === 0 });
      return (await arrived) - t0;
    });
    await controller.close();
    device.end(true);
    return [
      ...latencyRows('1. event latency, immediate (MotionDetected)', immediate, floorImmediate, 2.4),
      ...latencyRows('1. event latency, batched (CurrentTemperature)', batched, floorBatched, 255),
      ...latencyRows('2. write latency (HAP write -> /set)', writes, floorWrites, 3.6),
    ];
  } finally {
    await hub.stop('SIGTERM');
    removeDataDir(hub.dataDir);
  }
}
