/**
 * matter.js's Node.js platform, configured for a hub that owns its process: no reading of argv, the
 * environment or a config file (our options are ours), no signal or unhandled-error traps and no exit
 * codes (the hub stops itself), and its log into ours. Imported (dynamically) before any other
 * matter.js module: the configuration is read once, when matter.js first loads.
 */
import { config } from '@matter/nodejs/config';

// An ES module runs once per process: this happens before matter.js initialises its environment.
config.loadProcessArgv = false;
config.loadProcessEnv = false;
config.loadConfigFile = false;
config.trapProcessSignals = false;
config.trapUnhandledErrors = false;
config.setProcessExitCodeOnError = false;
