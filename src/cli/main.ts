/**
 * The `mqttkit` command line. Each command lives in its own file and registers itself here. Only the
 * command being run is loaded: `mqttkit start` does not carry the OTA progress bars, the simulator or the
 * conformance checker in its memory (issue 13: ~15 MB of RSS). Help and unknown commands load them all.
 */
import { Command } from 'commander';
import { VERSION } from '../hub/version.js';

/** The top-level command names each module registers, in the order help lists them. */
const MODULES: Array<{ names: string[]; register: (program: Command) => Promise<void> }> = [
  { names: ['start'], register: async (p) => (await import('./start-command.js')).registerStart(p) },
  {
    names: ['device', 'cmd', 'logs', 'devices'],
    register: async (p) => {
      const device = (await import('./device-command.js')).registerDevice(p);
      (await import('./observe-command.js')).registerObserve(p, device);
    },
  },
  { names: ['ota'], register: async (p) => (await import('./ota-command.js')).registerOta(p) },
  { names: ['user'], register: async (p) => (await import('./user-command.js')).registerUser(p) },
  { names: ['mosquitto-config'], register: async (p) => (await import('./mosquitto-config-command.js')).registerMosquittoConfig(p) },
  { names: ['simulate'], register: async (p) => (await import('./simulate-command.js')).registerSimulate(p) },
  { names: ['token'], register: async (p) => (await import('./token-command.js')).registerToken(p) },
  { names: ['backup', 'restore'], register: async (p) => (await import('./backup-command.js')).registerBackup(p) },
  { names: ['conformance'], register: async (p) => (await import('./conformance-command.js')).registerConformance(p) },
  { names: ['espnow'], register: async (p) => void (await import('./espnow-command.js')).registerEspNow(p) },
  { names: ['migrate'], register: async (p) => (await import('./migrate-command.js')).registerMigrate(p) },
  { names: ['query'], register: async (p) => (await import('./query-command.js')).registerQuery(p) },
  { names: ['service'], register: async (p) => (await import('./service-command.js')).registerService(p) },
  { names: ['version'], register: async (p) => (await import('./version-command.js')).registerVersion(p) },
];

const program = new Command('mqttkit')
  .description('A home hub that bridges MQTT devices and Apple HomeKit')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)');
const name = process.argv[2];
const only = MODULES.find((m) => name !== undefined && m.names.includes(name));
for (const module of only ? [only] : MODULES) await module.register(program);
await program.parseAsync(process.argv);
