/**
 * Scenarios 3 (load), 4 (scale) and 6 (flood): many devices, many bridges, one bad device.
 */
import { readFileSync } from 'node:fs';
import type { FleetOptions } from '../../device/simulator/fleet.js';
import { idMap, type PairingData, pair, reconnect } from '../../test/helpers/homekit-controller.js';
import { type RunningHub, removeDataDir, startHub } from '../../test/helpers/hub-process.js';
import { addAdmin, cliAsync, connectAdmin, connectDevice } from '../../test/helpers/mqtt-device.js';
import { FleetProcess } from '../fleet-process.js';
import { Controller, findId } from '../homekit-probe.js';
import { latencyRows, now, type Row, row, sleep, summarize } from '../stats.js';

/** user+system CPU seconds of a process, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz on Linux)
}

function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

async function metrics(hub: RunningHub, token: string): Promise<{ messages: { received: number }; heapUsedBytes: number }> {
  const response = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/metrics`, { headers: { authorization: `Bearer ${token}` } });
  return (await response.json()) as { messages: { received: number }; heapUsedBytes: number };
}

/** A paired controller and a motion sensor device, to sample event latency while something else happens. */
async function latencyProbe(hub: RunningHub, id: string) {
  const device = await connectDevice(hub.info.mqtt.address, id);
  await device.publishAsync(`HomeKit/${id}/MotionSensor/MotionDetected`, '0', { qos: 1 });
  const controller = await Controller.pair(hub.info.bridges[0]!.port!);
  let motion: string | undefined;
  for (let tries = 0; !motion && tries < 100; tries++) {
    try {
      motion = findId(await controller.client.getAccessories(), 'MotionSensor', 'MotionDetected', id);
    } catch {
      await sleep(100);
    }
  }
  await controller.client.subscribeCharacteristics([motion!]);
  let flip = false;
  return {
    sent: 0,
    async sample(): Promise<number | undefined> {
      this.sent++;
      flip = !flip;
      const arrived = controller.nextEvent(motion!, 5000).catch(() => undefined);
      const t0 = now();
      device.publish(`HomeKit/${id}/MotionSensor/MotionDetected`, flip ? '1' : '0', { qos: 0 });
      const at = await arrived;
      return at === undefined ? undefined : at - t0;
    },
    async close() {
      await controller.close();
      device.end(true);
    },
  };
}

export async function load(options: { devices: number; seconds: number }): Promise<Row[]> {
  const hub = await startHub({ args: ['--log-level', 'warn'] });
  try {
    const token = (JSON.parse((await cliAsync(['token', 'create', 'bench', '--json', '--data-dir', hub.dataDir])).stdout) as { token: string }).token;
    const probe = await latencyProbe(hub, 'load-probe');
    // Floors: the same hub idle, over a short window, before the fleet arrives.
    const idleLatencies: number[] = [];
    const idleCpuStart = cpuSeconds(hub.child.pid!);
    const idleStart = now();
    for (let i = 0; i < 40; i++) {
      const dt = await probe.sample();
      if (dt !== undefined) idleLatencies.push(dt);
      await sleep(200);
    }
    const idleCpu = ((cpuSeconds(hub.child.pid!) - idleCpuStart) / ((now() - idleStart) / 1000)) * 100;
    const idleMemory = memory(hub.child.pid!);
    probe.sent = 0; // the idle samples went out before the `before` snapshot below
    const fleet = await FleetProcess.fork();
    const fleetOptions: FleetOptions = {
      url: hub.info.mqtt.address,
      devices: options.devices,
      kinds: ['temperature'],
      prefix: 'load',
      secret: 'bench',
      interval: 0.5,
      jitter: 0.2,
      sleepSeconds: 60,
      concurrency: 16,
    };
    const before = (await metrics(hub, token)).messages.received;
    const connectStart = now();
    const failed = await fleet.start(fleetOptions);
    const connectSeconds = (now() - connectStart) / 1000;
    const cpuBefore = cpuSeconds(hub.child.pid!);
    const t0 = now();
    const latencies: number[] = [];
    while (now() - t0 < options.seconds * 1000) {
      const dt = await probe.sample();
      if (dt !== undefined) latencies.push(dt);
      await sleep(100); // ~550 samples in 60 s: the p99 is not one slow sample
    }
    const elapsed = (now() - t0) / 1000;
    const cpu = ((cpuSeconds(hub.child.pid!) - cpuBefore) / elapsed) * 100;
    await sleep(500);
    // The probe's first message went out before the `before` snapshot; only its samples count here.
    const published = (await fleet.published()) + probe.sent;
    const after = await metrics(hub, token);
    const received = after.messages.received - before;
    const mem = memory(hub.child.pid!);
    await fleet.stop();
    await probe.close();
    const name = `3. load (${options.devices} devices x 2 msg/s, ${options.seconds} s)`;
    return [
      row(name, 'devices that could not connect', failed.length, '', { target: ['0', (v) => v === 0] }),
      row(name, 'time to connect the fleet', connectSeconds, 's'),
      row(name, 'messages lost', Math.max(0, published - received), 'msgs', { target: ['0', (v) => v === 0] }),
      row(name, 'messages published', published, 'msgs'),
      row(name, 'hub CPU (user+sys) under load (floor: idle)', cpu, '% of a core', { floor: idleCpu, target: ['< 50 %', (v) => v < 50] }),
      row(name, 'hub RSS at the end of the load (floor: idle)', mem.rss / 1048576, 'MB', {
        floor: idleMemory.rss / 1048576,
        target: ['<= 150 MB', (v) => v <= 150],
      }),
      row(name, 'RSS per connected device (end of load minus idle)', (mem.rss - idleMemory.rss) / options.devices / 1024, 'KB'),
      row(name, 'hub peak RSS (since start)', mem.peak / 1048576, 'MB'),
      row(name, 'hub JavaScript heap in use at the end', after.heapUsedBytes / 1048576, 'MB'),
      ...latencyRows(`${name}: event latency (floor: idle)`, summarize(latencies), summarize(idleLatencies), 5),
    ];
  } finally {
    await hub.stop('SIGTERM');
    removeDataDir(hub.dataDir);
  }
}

export async function scale(options: { devices: number }): Promise<Row[]> {
  // Floors: the same hub starting empty.
  const emptyStart = now();
  let hub = await startHub({ args: ['--log-level', 'warn'] });
  const emptySeconds = (now() - emptyStart) / 1000;
  const emptyMemory = memory(hub.child.pid!);
  try {
    const password = addAdmin(hub.dataDir, 'fleet-admin');
    // One admin connection publishes for the whole fleet, paced under the broker's flood guard.
    const writer = await connectAdmin(hub.info.mqtt.address, 'fleet-admin', password);
    for (let i = 0; i < options.devices; i++) {
      await writer.publishAsync(`HomeKit/scale-${String(i).padStart(4, '0')}/TemperatureSensor/CurrentTemperature`, String(15 + (i % 10)), { qos: 1 });
      if (i % 90 === 89) await sleep(1000);
    }
    writer.end(true);
    const bridges = Math.ceil(options.devices / 149);
    for (let tries = 0; tries < 200 && hub.refresh().bridges.filter((b) => b.port).length < bridges; tries++) await sleep(100);
    const pairings: PairingData[] = [];
    const before: string[][] = [];
    for (const bridge of hub.refresh().bridges) {
      const { client, pairing } = await pair(bridge.port!);
      pairings.push(pairing);
      before.push(idMap(await client.getAccessories()));
      await client.close();
    }
    await hub.stop('SIGTERM');
    const t0 = now();
    hub = await startHub({ dataDir: hub.dataDir, args: ['--log-level', 'warn'] });
    const startSeconds = (now() - t0) / 1000;
    const mem = memory(hub.child.pid!);
    let kept = true;
    for (const [i, bridge] of hub.info.bridges.entries()) {
      const client = reconnect(bridge.port!, pairings[i]!);
      kept &&= JSON.stringify(idMap(await client.getAccessories())) === JSON.stringify(before[i]);
      await client.close();
    }
    const name = `4. scale (${options.devices} devices)`;
    return [
      row(name, 'bridges', hub.info.bridges.length, ''),
      row(name, 'restart: process start to all bridges published (floor: empty hub)', startSeconds, 's', { floor: emptySeconds }),
      row(name, 'RSS after restart (floor: empty hub)', mem.rss / 1048576, 'MB', { floor: emptyMemory.rss / 1048576, target: ['< 150 MB', (v) => v < 150] }),
      row(name, 'every AID/IID kept across the restart', kept ? 1 : 0, 'yes=1', { target: ['1', (v) => v === 1] }),
    ];
  } finally {
    await hub.stop('SIGTERM');
    removeDataDir(hub.dataDir);
  }
}

export async function flood(options: { messages: number; seconds: number }): Promise<Row[]> {
  const hub = await startHub({ args: ['--log-level', 'warn'] });
  try {
    const probe = await latencyProbe(hub, 'calm-device');
    const idle: number[] = [];
    for (let i = 0; i < 5; i++) {
      const dt = await probe.sample();
      if (dt !== undefined) idle.push(dt);
    }
    const flooder = await connectDevice(hub.info.mqtt.address, 'flooder');
    flooder.on('error', () => {});
    let cutOff = false;
    flooder.on('close', () => (cutOff = true));
    const floodStart = now();
    const flooding = (async () => {
      for (let i = 0; i < options.messages && !cutOff; i++) {
        flooder.publish('HomeKit/flooder/TemperatureSensor/CurrentTemperature', String(i % 40), { qos: 0 });
        if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
      }
    })();
    const during: number[] = [];
    let lost = 0;
    while (now() - floodStart < options.seconds * 1000) {
      const dt = await probe.sample();
      if (dt === undefined) lost++;
      else during.push(dt);
      await sleep(options.seconds > 5 ? 1000 : 200);
    }
    await flooding;
    flooder.end(true);
    const alive = hub.child.exitCode === null;
    await probe.close();
    const name = `6. flood (${options.messages} QoS 0 messages from one device)`;
    return [
      row(name, 'hub still running', alive ? 1 : 0, 'yes=1', { target: ['1', (v) => v === 1] }),
      row(name, 'flooder cut off', cutOff ? 1 : 0, 'yes=1'),
      row(name, "other device's updates lost", lost, 'msgs', { target: ['0', (v) => v === 0] }),
      ...latencyRows(`${name}: other device's event latency`, summarize(during), summarize(idle)),
    ];
  } finally {
    await hub.stop('SIGTERM');
    removeDataDir(hub.dataDir);
  }
}
