/**
 * Scenario 8's floor, run as its own process: an aedes broker alone on a free loopback port, with one
 * in-process subscription to the device topics (as the hub's own link has), configured as the hub
 * configures it for idle. It prints its port and serves until killed. What the same idle devices cost
 * here is the broker's share: the rest of the hub's figure is mqttkit's own.
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

const aedes = await Aedes.createBroker({ heartbeatInterval: 86_400_000 });
aedes.subscribe(
  'HomeKit/#',
  (_packet, done) => done(),
  () => {},
);
const server = createServer(aedes.handle);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  aedes.close(() => process.exit(0));
});
