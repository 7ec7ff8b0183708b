/**
 * `mqttkit service install|uninstall`: runs this install of mqttkit as a systemd service (docs/service.md).
 * The unit names the exact node and script of this install; after an upgrade that moves either, install again.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { VERSION } from '../hub/version.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { inTmp, SERVICE_ENV_FILE, UNIT_MARKER, UNIT_NAME, unitPathProblem, unitText } from './service-unit.js';
import { action, CliError } from './workspace.js';

interface Flags {
  user?: boolean;
  system?: boolean;
  dataDir?: string;
  runAs?: string;
  unitDir?: string;
  dryRun?: boolean;
  force?: boolean;
}

const LAUNCHER = fileURLToPath(new URL('../../../bin/mqttkit.js', import.meta.url));

export function registerService(program: Command): void {
  const service = program
    .command('service')
    .description('run mqttkit as a systemd service that starts on boot (docs/service.md)')
    .addHelpText(
      'after',
      `
Examples:
  $ mqttkit service install --user                      # ~/.config/systemd/user/mqttkit.service
  $ sudo mqttkit service install --system --run-as mqttkit --data-dir /var/lib/mqttkit -- --http-tls auto
  $ mqttkit service install --dry-run                   # print the unit, change nothing
  $ mqttkit service uninstall --user`,
    );
  const common = (command: Command) =>
    command
      .option(
        '--user',
        "a user service (~/.config/systemd/user; the default when not root): it runs as you, while you are logged in unless 'loginctl enable-linger'",
      )
      .option('--system', 'a system service (/etc/systemd/system, needs root; the default as root): it starts on boot, as --run-as')
      .option('--unit-dir <dir>', "write the unit here instead of systemd's folder (systemctl is not run then) [MQTTKIT_SYSTEMD_DIR]")
      .option('--dry-run', 'print what would be written and run, change nothing')
      .option('--force', 'replace or remove a mqttkit.service that `mqttkit service install` did not write');
  common(service.command('install').argument('[start-options...]', 'options for `mqttkit start`, after --, e.g. -- --http-tls auto'))
    .description('write a systemd unit that runs `mqttkit start` with this node and this install, enable and start it')
    .option('--data-dir <dir>', "the hub's data dir (default: $MQTTKIT_DATA_DIR, else ~/.local/share/mqttkit for --user, /var/lib/mqttkit for --system)")
    .option('--run-as <user>', 'the account a --system service runs as (default: $SUDO_USER; not root)')
    .action(action((startOptions: string[], flags: Flags) => install(startOptions, flags)));
  common(service.command('uninstall'))
    .description('stop and disable the service and remove its unit (the data dir stays)')
    .action(action((flags: Flags) => uninstall(flags)));
}

function modeOf(flags: Flags): 'user' | 'system' {
  if (flags.user && flags.system) throw new CliError('--user and --system exclude each other: choose one', 2);
  if (flags.user) return 'user';
  if (flags.system) return 'system';
  return process.getuid?.() === 0 ? 'system' : 'user';
}

interface Target {
  mode: 'user' | 'system';
  file: string;
  /** systemctl is run only for systemd's own folder. */
  systemctl: boolean;
}

function targetOf(flags: Flags): Target {
  const mode = modeOf(flags);
  const custom = flags.unitDir ?? (process.env.MQTTKIT_SYSTEMD_DIR || undefined);
  if (custom) return { mode, file: join(resolve(custom), UNIT_NAME), systemctl: false };
  if (mode === 'system') {
    if (process.getuid?.() !== 0 && !flags.dryRun)
      throw new CliError('a --system service is written to /etc/systemd/system, which needs root: run it with sudo (or use --user)');
    return { mode, file: join('/etc/systemd/system', UNIT_NAME), systemctl: true };
  }
  const config = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return { mode, file: join(config, 'systemd', 'user', UNIT_NAME), systemctl: true };
}

/** A unit at `file` that we did not write: refused unless --force. */
function refuseForeign(file: string, flags: Flags, doing: string): void {
  if (!existsSync(file) || flags.force) return;
  const text = readFileSync(file, 'utf8');
  if (!text.startsWith(UNIT_MARKER))
    throw new CliError(
      `${file} exists and was not written by \`mqttkit service install\` (its first line is not "${UNIT_MARKER}…"): ${doing} it would lose that unit. Move it away, or run again with --force to ${doing === 'replacing' ? 'replace' : 'remove'} it`,
    );
}

/** The node flags and environment the launcher's `#!/usr/bin/env -S VAR=value node --flag` line asks for. */
function launcherSettings(): { env: Record<string, string>; flags: string[] } {
  const first = readFileSync(LAUNCHER, 'utf8').split('\n', 1)[0]!;
  const words = /^#!\/usr\/bin\/env -S (.*)$/.exec(first)?.[1]?.split(' ') ?? [];
  const node = words.indexOf('node');
  const env = Object.fromEntries(words.slice(0, Math.max(0, node)).map((w) => w.split('=', 2) as [string, string]));
  return { env, flags: node < 0 ? [] : words.slice(node + 1) };
}

/**
 * Start options go into ExecStart=, in a unit file every user can read (and ps, systemctl show): no line
 * breaks (they would add lines to the unit), no secrets (they go to the 0600 environment file it reads).
 */
function refuseStartOptions(startOptions: string[]): void {
  const secretFix = (variable: string) =>
    `put it in the data dir's ${SERVICE_ENV_FILE} instead (a line ${variable}=…, the file at mode 0600: the unit reads it with EnvironmentFile=), or in config.json at mode 0600`;
  for (const [i, option] of startOptions.entries()) {
    if (/[\u0000-\u001f\u007f]/.test(option))
      throw new CliError(
        `the start option ${JSON.stringify(option)} has a line break or control character in it, which would add lines to the unit: give it without`,
        2,
      );
    const flag = option.startsWith('--') ? option.split('=', 1)[0]! : startOptions[i - 1]?.startsWith('--') ? startOptions[i - 1]!.split('=', 1)[0]! : '';
    const value = option.includes('=') && option.startsWith('--') ? option.slice(option.indexOf('=') + 1) : option;
    if (option === '--mqtt-password' || option.startsWith('--mqtt-password='))
      throw new CliError(
        `--mqtt-password after -- would be readable by every user in the unit file, ps and systemctl show: ${secretFix('MQTTKIT_MQTT_PASSWORD')}`,
        2,
      );
    if (hasUrlPassword(value)) {
      const variable = flag === '--database-url' ? 'MQTTKIT_DATABASE_URL' : flag === '--mqtt-url' ? 'MQTTKIT_MQTT_URL' : 'MQTTKIT_…';
      throw new CliError(
        `the start option ${flag || 'value'} is a URL with a password, which would be readable by every user in the unit file, ps and systemctl show: ${secretFix(variable)}`,
        2,
      );
    }
  }
}

function hasUrlPassword(value: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) return false;
  try {
    return new URL(value).password !== '';
  } catch {
    return /^[^:]+:\/\/[^/@]*:[^/@]*@/.test(value);
  }
}

function install(startOptions: string[], flags: Flags): void {
  const target = targetOf(flags);
  const { mode } = target;
  if (startOptions.some((o) => o === '--data-dir' || o.startsWith('--data-dir=')))
    throw new CliError('give the data dir to `mqttkit service install --data-dir <dir>`, not after --: the unit needs it for ReadWritePaths= too', 2);
  refuseStartOptions(startOptions);
  const dataDir = resolve(
    flags.dataDir ??
      (process.env.MQTTKIT_DATA_DIR || undefined) ??
      (mode === 'system' ? '/var/lib/mqttkit' : join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'mqttkit')),
  );
  const runAs = mode === 'system' ? (flags.runAs ?? (process.env.SUDO_USER || undefined)) : undefined;
  if (mode === 'system' && !runAs)
    throw new CliError(
      'a --system service needs the account it runs as: --run-as <user> (the hub must not run as root; e.g. create one with: useradd --system --home-dir /var/lib/mqttkit mqttkit)',
      2,
    );
  if (runAs === 'root') throw new CliError('--run-as root: the hub must not run as root; name an ordinary account (e.g. useradd --system mqttkit)', 2);
  if (flags.runAs && mode === 'user') throw new CliError('--run-as is for --system: a --user service runs as you', 2);
  if (runAs !== undefined && /[\u0000-\u001f\u007f\s]/.test(runAs))
    throw new CliError(`--run-as ${JSON.stringify(runAs)} has a space or control character in it: name an account (e.g. mqttkit)`, 2);
  const owner = runAs ? idsOf(runAs) : undefined;
  // Any account of uid 0 is root (`--run-as 0`, a second uid-0 name): User= would run the hub with every privilege.
  if (runAs && owner?.[0] === 0)
    throw new CliError(`--run-as ${runAs}: that account's uid is 0, so the hub would run as root; name an ordinary account (e.g. useradd --system mqttkit)`, 2);
  const node = realpathSync(process.execPath);
  const script = realpathSync(LAUNCHER);
  for (const path of [dataDir, node, script]) {
    const problem = unitPathProblem(path);
    if (problem) throw new CliError(`${problem}: use a data dir (or install mqttkit and node) at a path without them`, 2);
  }
  if (inTmp(dataDir))
    console.log(`Warning: the data dir ${dataDir} is under /tmp, which many systems empty at boot: the hub would forget its devices and pairings.`);
  const launcher = launcherSettings();
  const envFile = join(dataDir, SERVICE_ENV_FILE);
  const text = unitText({ mode, version: VERSION, node, nodeFlags: launcher.flags, env: launcher.env, envFile, script, dataDir, startOptions, runAs });
  const ctl = mode === 'user' ? ['systemctl', '--user'] : ['systemctl'];
  const journal = mode === 'user' ? 'journalctl --user -u mqttkit -f' : 'journalctl -u mqttkit -f';
  if (flags.dryRun) {
    console.log(`# ${target.file} (not written: --dry-run)\n${text}`);
    if (target.systemctl) console.log(`# would run: ${ctl.join(' ')} daemon-reload && ${ctl.join(' ')} enable --now mqttkit`);
    return;
  }
  refuseForeign(target.file, flags, 'replacing');
  // ReadWritePaths= names a folder that must exist, owned by the account the hub runs as.
  if (!existsSync(dataDir)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (owner) chownSync(dataDir, ...owner);
    console.log(`Created the data dir ${dataDir}${runAs ? ` (owned by ${runAs})` : ''}.`);
  }
  mkdirSync(join(target.file, '..'), { recursive: true });
  writeFileAtomic(target.file, text, { mode: 0o644 });
  console.log(`Wrote ${target.file}: a ${mode} service running mqttkit ${VERSION} with ${node} on the data dir ${dataDir}.`);
  if (!target.systemctl) {
    console.log(`Not run (the unit is in --unit-dir): ${ctl.join(' ')} daemon-reload && ${ctl.join(' ')} enable --now mqttkit`);
    return;
  }
  if (!systemdRuns(mode)) {
    console.log(
      `systemd is not running here${mode === 'user' ? ' for your user' : ''}: once it is, run ${ctl.join(' ')} daemon-reload && ${ctl.join(' ')} enable --now mqttkit`,
    );
    return;
  }
  run([...ctl, 'daemon-reload']);
  run([...ctl, 'enable', '--now', 'mqttkit']);
  console.log(`Ran ${ctl.join(' ')} daemon-reload and ${ctl.join(' ')} enable --now mqttkit: the hub runs, and starts again on boot.`);
  if (mode === 'user') console.log(`To start it at boot without logging in: loginctl enable-linger ${userInfo().username}`);
  console.log(`Next: watch it start (the setup code and the dashboard's address are in its first lines): ${journal}`);
}

function uninstall(flags: Flags): void {
  const target = targetOf(flags);
  const ctl = target.mode === 'user' ? ['systemctl', '--user'] : ['systemctl'];
  if (!existsSync(target.file))
    throw new CliError(`there is no ${target.file}: nothing to uninstall${target.mode === 'user' ? ' (a system service? --system)' : ''}`);
  refuseForeign(target.file, flags, 'removing');
  if (flags.dryRun) {
    if (target.systemctl) console.log(`would run: ${ctl.join(' ')} disable --now mqttkit`);
    console.log(`would remove ${target.file}${target.systemctl ? ` and run ${ctl.join(' ')} daemon-reload` : ''} (--dry-run: nothing changed)`);
    return;
  }
  const live = target.systemctl && systemdRuns(target.mode);
  if (live) run([...ctl, 'disable', '--now', 'mqttkit']);
  rmSync(target.file);
  if (live) run([...ctl, 'daemon-reload']);
  console.log(
    `${live ? `Stopped and disabled mqttkit; removed` : 'Removed'} ${target.file}. The data dir is kept (remove it yourself if you no longer want the hub's devices, keys and pairings).`,
  );
}

/** systemd is the init system (sd_booted: /run/systemd/system exists), and for --user the user's manager answers. */
function systemdRuns(mode: 'user' | 'system'): boolean {
  if (!existsSync('/run/systemd/system')) return false;
  if (mode === 'system') return true;
  return spawnSync('systemctl', ['--user', 'show-environment'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

function run(command: string[]): void {
  const done = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8', timeout: 60_000 });
  if (done.error || done.status !== 0)
    throw new CliError(
      `${command.join(' ')} failed${done.error ? ` (${done.error.message})` : ''}: ${(done.stderr || done.stdout || '').trim().slice(0, 500)}`,
    );
}

function idsOf(user: string): [number, number] {
  try {
    return [Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim()), Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim())];
  } catch {
    throw new CliError(
      `there is no account ${user} on this machine: create it (e.g. useradd --system --home-dir /var/lib/mqttkit ${user}) or name another with --run-as`,
    );
  }
}
