/**
 * Scenario 10 (`--matter`): MQTT publish → Matter subscription report at a controller (matter.js's own,
 * commissioned over loopback), for an occupancy sensor (MotionDetected) and a temperature sensor, beside
 * the HomeKit event for the same MotionDetected publish on the same hub (hap-controller, as scenario 1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint } from '@matter/main';
import { removeDataDir, startHub } from '../../test/helpers/hub-process.js';
import { bridgedDevice, clusterState, freeUdpPort, matterStatus, startMatterController } from '../../test/helpers/matter-controller.js';
import { connectDevice } from '../../test/helpers/mqtt-device.js';
import { Controller, findId } from '../homekit-probe.js';
import { latencyRows, now, type Row, type Summary, sleep, summarize } from '../stats.js';

export interface MatterLatencyOptions {
  samples: number;
}

const WARM_UP = 3;
const DEVICES = 4;
/** Longest wait for one report before the sample counts as lost (the run then fails). */
const REPORT_TIMEOUT_MS = 5000;

/** The moment the controller's copy of `cluster.attribute` on `endpoint` next changes. */
function nextChange(endpoint: Endpoint, cluster: string, attribute: string): Promise<number> {
  // matter.js types events per endpoint type; looked up by name here.
  const events = endpoint.events as unknown as Record<string, Record<string, { once(f: () => void): void; off(f: () => void): void }>>;
  const observable = events[cluster]![`${attribute}$Changed`]!;
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      resolve(now());
    };
    const timer = setTimeout(() => {
      observable.off(done);
      reject(new Error(`no Matter report of ${cluster}.${attribute} within ${REPORT_TIMEOUT_MS} ms`));
    }, REPORT_TIMEOUT_MS);
    observable.once(done);
  });
}

async function measure(n: number, once: (i: number) => Promise<number>): Promise<Summary> {
  const samples: number[] = [];
  for (let i = 0; i < n + WARM_UP; i++) {
    const sample = await once(i);
    if (i >= WARM_UP) samples.push(sample);
    await sleep(5); // scenario 1's pacing
  }
  return summarize(samples);
}

export async function matterLatency(options: MatterLatencyOptions): Promise<Row[]> {
  const port = await freeUdpPort();
  const controllerDir = mkdtempSync(join(tmpdir(), 'mqttkit-bench-matter-'));
  const hub = await startHub({ args: ['--matter', '--matter-port', String(port), '--log-level', 'warn'] });
  const matter = await startMatterController(controllerDir);
  try {
    const devices = await Promise.all(Array.from({ length: DEVICES }, (_, d) => connectDevice(hub.info.mqtt.address, `bench-matter-${d}`)));
    const base = (d: number) => `HomeKit/bench-matter-${d}`;
    for (const [d, device] of devices.entries()) {
      await device.publishAsync(`${base(d)}/MotionSensor/MotionDetected`, '0', { qos: 1 });
      await device.publishAsync(`${base(d)}/TemperatureSensor/CurrentTemperature`, '20', { qos: 1 });
    }
    const status = await matterStatus(hub.dataDir, hub.info.httpPort!);
    const peer = await matter.commission(port, status.manualCode!);
    const endpoints: Array<{ occupancy: Endpoint; temperature: Endpoint }> = [];
    for (let d = 0; d < DEVICES; d++) {
      for (let tries = 0; ; tries++) {
        const children = bridgedDevice(peer, `bench-matter-${d}`)?.children ?? [];
        const occupancy = children.find((e) => clusterState(e, 'occupancySensing'));
        const temperature = children.find((e) => clusterState(e, 'temperatureMeasurement'));
        if (occupancy && temperature) {
          endpoints.push({ occupancy, temperature });
          break;
        }
        if (tries > 100) throw new Error(`bench-matter-${d} did not appear at the Matter controller`);
        await sleep(100);
      }
    }
    const homekit = await Controller.pair(hub.info.bridges[0]!.port!);
    const db = await homekit.client.getAccessories();
    const motionIds = devices.map((_, d) => findId(db, 'MotionSensor', 'MotionDetected', `bench-matter-${d}`));
    await homekit.client.subscribeCharacteristics(motionIds);

    // Sample i goes through device i % DEVICES, and always changes its value (an unchanged one reports nothing).
    const motion = devices.map(() => false);
    const toggleMotion = (d: number) => {
      motion[d] = !motion[d];
      devices[d]!.publish(`${base(d)}/MotionSensor/MotionDetected`, motion[d] ? '1' : '0', { qos: 0 });
    };
    const turn = (i: number) => ({ d: i % DEVICES, flip: Math.floor(i / DEVICES) % 2 === 0 });
    const occupancy = await measure(options.samples, async (i) => {
      const { d } = turn(i);
      const arrived = nextChange(endpoints[d]!.occupancy, 'occupancySensing', 'occupancy');
      const t0 = now();
      toggleMotion(d);
      return (await arrived) - t0;
    });
    const temperature = await measure(options.samples, async (i) => {
      const { d, flip } = turn(i);
      const arrived = nextChange(endpoints[d]!.temperature, 'temperatureMeasurement', 'measuredValue');
      const t0 = now();
      devices[d]!.publish(`${base(d)}/TemperatureSensor/CurrentTemperature`, String(21 + (flip ? 1 : 0) + 0.5), { qos: 0 });
      return (await arrived) - t0;
    });
    // The same MotionDetected publishes, to HomeKit on the same hub (the figure scenario 1 reports).
    const homekitMotion = await measure(options.samples, async (i) => {
      const { d } = turn(i);
      const arrived = homekit.nextEvent(motionIds[d]!);
      const t0 = now();
      toggleMotion(d);
      return (await arrived) - t0;
    });
    await homekit.close();
    for (const device of devices) device.end(true);
    return [
      ...latencyRows('10. Matter report latency (MotionDetected -> OccupancySensing)', occupancy, undefined),
      ...latencyRows('10. Matter report latency (CurrentTemperature -> MeasuredValue)', temperature, undefined),
      ...latencyRows('10. HomeKit event latency, same hub (MotionDetected)', homekitMotion, undefined),
    ];
  } finally {
    await matter.close().catch(() => {});
    await hub.stop('SIGTERM');
    removeDataDir(hub.dataDir);
    rmSync(controllerDir, { recursive: true, force: true });
  }
}
