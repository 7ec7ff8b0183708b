/** The `mqttkit` command line. Each command lives in its own file and registers itself here. */
import { Command } from 'commander';
import { VERSION } from '../hub/version.js';
import { registerBackup } from './backup-command.js';
import { registerConformance } from './conformance-command.js';
import { registerDevice } from './device-command.js';
import { registerMosquittoConfig } from './mosquitto-config-command.js';
import { registerObserve } from './observe-command.js';
import { registerOta } from './ota-command.js';
import { registerSimulate } from './simulate-command.js';
import { registerStart } from './start-command.js';
import { registerToken } from './token-command.js';
import { registerUser } from './user-command.js';

const program = new Command('mqttkit')
  .description('A home hub that bridges MQTT devices and Apple HomeKit')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)');
registerStart(program);
const device = registerDevice(program);
registerObserve(program, device);
registerOta(program);
registerUser(program);
registerMosquittoConfig(program);
registerSimulate(program);
registerToken(program);
registerBackup(program);
registerConformance(program);
await program.parseAsync(process.argv);
