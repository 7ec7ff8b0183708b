/**
 * The systemd unit `mqttkit service install` writes (docs/service.md): pure text from the paths of this
 * install, so it is tested as text and checked with `systemd-analyze verify`.
 */

/** The unit's first line: a unit without it was not written by us, and is not replaced or removed without --force. */
export const UNIT_MARKER = '# Written by `mqttkit service install`';
export const UNIT_NAME = 'mqttkit.service';
/** In the data dir: secrets for `mqttkit start` (MQTTKIT_DATABASE_URL=…), mode 0600, read by systemd (EnvironmentFile=), never in the unit. */
export const SERVICE_ENV_FILE = 'service.env';

export interface UnitSpec {
  mode: 'user' | 'system';
  version: string;
  /** Node's binary, and the flags and environment the launcher's `#!` line asks for. */
  node: string;
  nodeFlags: string[];
  env: Record<string, string>;
  /** The optional environment file (SERVICE_ENV_FILE in the data dir). */
  envFile?: string | undefined;
  /** This install's `bin/mqttkit.js`. */
  script: string;
  dataDir: string;
  /** Options for `mqttkit start` (after `--` on the command line). */
  startOptions: string[];
  /** The account a system unit runs as (`User=`). */
  runAs?: string | undefined;
}

/** A path systemd takes as one word in ReadWritePaths= and WorkingDirectory= (no quoting there): no spaces, quotes or control characters. */
export function unitPathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return `${path} is not an absolute path`;
  if (/[\s"'\\%$;]/.test(path) || /[\u0000-\u001f\u007f]/.test(path))
    return `${path} has a space, quote, backslash, %, $ or ; in it, which a systemd unit cannot hold as one path`;
  return undefined;
}

/** One ExecStart= word: quoted when it has to be; `%` (specifiers) and `$` (variables) are doubled so systemd passes them as they are. */
export function execWord(word: string): string {
  // A line break would end ExecStart= and start a line of the caller's choosing (User=root, ExecStartPre=…).
  if (/[\u0000-\u001f\u007f]/.test(word)) throw new Error(`${JSON.stringify(word)} has a control character, which a unit line cannot hold`);
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Where something lives under a home folder: ProtectHome=true would hide it from the hub. */
const inHome = (path: string) => /^\/(home|root|run\/user)(\/|$)/.test(path);

export const inTmp = (path: string) => /^\/(var\/)?tmp(\/|$)/.test(path);

export function unitText(spec: UnitSpec): string {
  const exec = [spec.node, ...spec.nodeFlags, spec.script, 'start', '--data-dir', spec.dataDir, ...spec.startOptions].map(execWord).join(' ');
  // ProtectHome=true hides /home, /root and /run/user; read-only keeps them readable, and ReadWritePaths= opens the data dir again.
  // A user unit's data dir and a node from nvm are usually in home; a system unit's are not, unless put there.
  const homeNeeded = spec.mode === 'user' || [spec.node, spec.script, spec.dataDir].some(inHome);
  const lines = [
    `${UNIT_MARKER} (mqttkit ${spec.version}); \`mqttkit service uninstall\` removes it.`,
    '# Run `mqttkit service install` again (with --force if you changed this file) after moving or upgrading mqttkit or node.',
    '[Unit]',
    'Description=mqttkit home hub (MQTT devices to HomeKit)',
    ...(spec.mode === 'system' ? ['After=network-online.target', 'Wants=network-online.target'] : ['After=network.target']),
    // A hub that fails at once (a bad option, a damaged store) is not restarted forever: it says why in the journal.
    'StartLimitIntervalSec=120',
    'StartLimitBurst=5',
    '',
    '[Service]',
    'Type=simple',
    ...(spec.mode === 'system' && spec.runAs ? [`User=${spec.runAs}`] : []),
    ...Object.entries(spec.env).map(([name, value]) => `Environment=${name}=${value}`),
    ...(spec.envFile
      ? [`# Secrets (e.g. MQTTKIT_DATABASE_URL=…, MQTTKIT_MQTT_PASSWORD=…) go here, mode 0600, not in this file:`, `EnvironmentFile=-${spec.envFile}`]
      : []),
    `WorkingDirectory=${spec.dataDir}`,
    `ExecStart=${exec}`,
    // SIGTERM stops the hub cleanly within 5 s (it kills itself past that): systemd need not wait longer.
    'KillSignal=SIGTERM',
    'TimeoutStopSec=15',
    'Restart=on-failure',
    'RestartSec=5',
    '# Hardening: the hub writes only its data dir, gains no privileges, and sees no other /tmp.',
    ...(spec.mode === 'user' ? ['# (A user unit needs PrivateUsers=true for these to apply: systemd.exec(5).)', 'PrivateUsers=true'] : []),
    'NoNewPrivileges=true',
    'ProtectSystem=strict',
    `ProtectHome=${homeNeeded ? 'read-only' : 'true'}`,
    `ReadWritePaths=${spec.dataDir}`,
    // A data dir under /tmp would be hidden by the service's own /tmp (and is emptied at reboot on many systems).
    ...(inTmp(spec.dataDir) ? ['# PrivateTmp= is left out: the data dir is under /tmp (move it: many systems empty /tmp at boot).'] : ['PrivateTmp=true']),
    ...(spec.mode === 'system' ? ['ProtectKernelTunables=true', 'ProtectKernelModules=true', 'ProtectControlGroups=true', 'RestrictSUIDSGID=true'] : []),
    '',
    '[Install]',
    `WantedBy=${spec.mode === 'user' ? 'default.target' : 'multi-user.target'}`,
    '',
  ];
  return lines.join('\n');
}
