/** `mqttkit mosquitto-config <dir>`: a Mosquitto setup that enforces mqttkit's rules, and the hub's login to it. */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { dynsecState, findDynsecPlugin, HUB_ACCOUNT, mosquittoConf } from '../broker/mosquitto/mosquitto-config.js';
import { generatePassword } from '../security/password-hash.js';
import { writeBrokerCredentials } from '../store/broker-credentials.js';
import { action, CliError } from './workspace.js';

interface Flags {
  dataDir?: string;
  port: string;
  host: string;
  plugin?: string;
  force?: boolean;
}

export function registerMosquittoConfig(program: Command): void {
  program
    .command('mosquitto-config <dir>')
    .description("write a Mosquitto 2.x config (dynamic-security plugin, no anonymous access) and the hub's login to it")
    .option('--data-dir <DIR>', "the hub's data dir, where its broker login is kept (default: ./data) [MQTTKIT_DATA_DIR]")
    .option('--port <N>', 'the port Mosquitto listens on', '1883')
    .option('--host <ADDR>', 'the address Mosquitto listens on', '0.0.0.0')
    .option('--plugin <PATH>', 'mosquitto_dynamic_security.so (default: found in /usr/lib)')
    .option('--force', 'overwrite an existing configuration (its accounts are lost)')
    .addHelpText(
      'after',
      `
Then:
  $ mosquitto -c <dir>/mosquitto.conf
  $ mqttkit start --mqtt-url mqtt://127.0.0.1:1883
  $ mqttkit device add <id>       # each device is provisioned ahead of time`,
    )
    .action(
      action((dir: string, flags: Flags) => {
        const target = resolve(dir);
        const dataDir = resolve(flags.dataDir ?? process.env.MQTTKIT_DATA_DIR ?? './data');
        const port = Number(flags.port);
        if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CliError(`--port: '${flags.port}' is not a port number 1-65535`, 2);
        const plugin = flags.plugin ?? findDynsecPlugin();
        if (!plugin)
          throw new CliError('cannot find mosquitto_dynamic_security.so: install Mosquitto 2.x (apt-get install mosquitto) or pass --plugin PATH', 1);
        const dynsecFile = join(target, 'dynamic-security.json');
        if (existsSync(dynsecFile) && !flags.force) throw new CliError(`${dynsecFile} exists: its accounts would be lost; pass --force to overwrite`);

        const hubPassword = generatePassword();
        mkdirSync(target, { recursive: true });
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        writeFileSync(join(target, 'mosquitto.conf'), mosquittoConf({ port, host: flags.host, pluginPath: plugin, dynsecFile, hubPassword }));
        writeFileSync(dynsecFile, `${JSON.stringify(dynsecState(hubPassword), null, 2)}\n`, { mode: 0o600 });
        chmodSync(dynsecFile, 0o600);
        writeBrokerCredentials(dataDir, { username: HUB_ACCOUNT, password: hubPassword });
        // Started as root, Mosquitto drops to its own user, which must read and rewrite the accounts file.
        const owner = process.getuid?.() === 0 ? brokerUser() : undefined;
        if (owner) for (const path of [target, dynsecFile]) chownSync(path, owner.uid, owner.gid);
        console.log(`Wrote ${join(target, 'mosquitto.conf')} and ${dynsecFile}.`);
        console.log(`The hub's broker login (${HUB_ACCOUNT}) is kept in ${dataDir}.`);
        if (!owner) console.log(`Mosquitto must be able to read and write ${dynsecFile}: run it as ${userInfo().username} or chown the file to its user.`);
        console.log(`Start Mosquitto with: mosquitto -c ${join(target, 'mosquitto.conf')}`);
        console.log(`Then: mqttkit start --data-dir ${dataDir} --mqtt-url mqtt://127.0.0.1:${port}`);
      }),
    );
}

/** The `mosquitto` system user that Debian's package creates, if present. */
function brokerUser(): { uid: number; gid: number } | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('mosquitto:'));
    const [, , uid, gid] = line?.split(':') ?? [];
    return uid && gid ? { uid: Number(uid), gid: Number(gid) } : undefined;
  } catch {
    return undefined;
  }
}
