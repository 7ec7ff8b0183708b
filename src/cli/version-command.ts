/** `mqttkit version`: the same answer as `mqttkit --version` (the package version, one line), for people who type it as a command. */
import type { Command } from 'commander';
import { VERSION } from '../hub/version.js';

export function registerVersion(program: Command): void {
  program
    .command('version')
    .description('print the version of mqttkit (as --version does)')
    .action(() => {
      console.log(VERSION);
    });
}
