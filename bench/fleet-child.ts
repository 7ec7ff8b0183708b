/**
 * A simulated fleet in a process of its own, driven over IPC by a scenario (bench/fleet-process.ts). The load scenario measures
 * another device's event latency from the benchmark process: 500 MQTT.js clients in that same process
 * would add their own event-loop delays to the figure (a phone has no fleet inside it).
 */
import { Fleet, type FleetOptions } from '../device/simulator/fleet.js';

export type FleetRequest = { start: FleetOptions } | 'count' | 'stop';
export type FleetAnswer = { started: Array<{ id: string; error: string }> } | { published: number } | 'stopped';

let fleet: Fleet | undefined;
const answer = (message: FleetAnswer) => process.send!(message);
const published = () => fleet?.devices.reduce((n, d) => n + d.stats.published, 0) ?? 0;

process.on('message', (request: FleetRequest) => {
  void (async () => {
    if (request === 'count') return answer({ published: published() });
    if (request === 'stop') {
      await fleet?.stop();
      answer('stopped');
      return process.disconnect();
    }
    fleet = new Fleet(request.start);
    answer({ started: await fleet.start() });
  })();
});
