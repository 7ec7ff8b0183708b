/** A process that takes the active role on a database and says so; the test kills it with SIGKILL. */
import { Leadership } from '../../src/hub/leadership.js';

const leadership = new Leadership(process.argv[2]!, {
  active: () => void process.stdout.write('active\n'),
  standby: (why) => void process.stdout.write(`standby ${why}\n`),
});
await leadership.start();
process.stdout.write(`${leadership.role}\n`);
setInterval(() => {}, 1 << 30);
