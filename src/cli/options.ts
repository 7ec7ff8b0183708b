/**
 * `mqttkit start` options: flags override MQTTKIT_* environment variables, which override
 * `<data dir>/config.json`, which overrides the defaults. A bad value stops start-up with a message
 * naming the option, where it came from, and what is allowed.
 */

import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { didYouMean } from '../core/suggest.js';
import { RESERVED_DEVICE_IDS } from '../core/topic.js';
import { checkPincode } from '../homekit/pincode.js';
import type { HubOptions } from '../hub/hub.js';
import { LOG_LEVELS, type LogLevel } from '../log/logger.js';
import { OTA_MAX_FILE_SIZE_DEFAULT, OTA_MAX_FILE_SIZE_RANGE, parseSize } from '../ota/file-size.js';
import { REGISTRATION_POLICIES, type RegistrationPolicy } from '../security/registration.js';
import { readBrokerCredentials } from '../store/broker-credentials.js';
import { isPostgresUrl } from '../store/engine/open.js';
import { redactUrl } from '../store/engine/sql-engine.js';
import { canonicalHost } from '../web/allowed-hosts.js';

export const CONFIG_FILE = 'config.json';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DAY_MS = UNIT_MS.d;

/** A whole number within [min, max]; every source arrives as text (a JSON number as its digits). */
const wholeNumber = (min: number, max: number) =>
  z.string().transform((v, ctx) => {
    const n = Number(v.trim());
    if (!/^-?\d+$/.test(v.trim())) ctx.addIssue({ code: 'custom', message: 'not a whole number' });
    else if (n < min || n > max) ctx.addIssue({ code: 'custom', message: `${n} is outside ${min}-${max}` });
    else return n;
    return z.NEVER;
  });
const port = wholeNumber(0, 65535);
const host = z.string().refine((v) => isIP(v) !== 0 || /^[A-Za-z0-9.-]{1,253}$/.test(v));

/** Shows a length of time in the largest unit that divides it: 3600000 → 1h. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  return `${ms}ms`;
}

interface DurationRange {
  min: number;
  max: number;
  /** A bare number (no unit) below this is refused: it is too easy to mean minutes or days and get seconds. */
  unitRequiredBelow?: number;
}

/** A duration like 90s, 1500ms, 12h or 7d, in milliseconds, within a range; a bare number counts seconds. */
const duration = ({ min, max, unitRequiredBelow }: DurationRange) =>
  z.string().transform((v, ctx) => {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(v.trim());
    if (!match) {
      ctx.addIssue({ code: 'custom', message: 'not a duration' });
      return z.NEVER;
    }
    const ms = Math.round(Number(match[1]) * UNIT_MS[(match[2] as keyof typeof UNIT_MS) ?? 's']);
    const bare = match[2] === undefined;
    if (bare && unitRequiredBelow !== undefined && ms < unitRequiredBelow) {
      ctx.addIssue({
        code: 'custom',
        message: `a bare number counts seconds, so this means ${match[1]} seconds; under ${formatDuration(unitRequiredBelow)} write the unit, e.g. 12h`,
      });
    } else if (ms < min) {
      ctx.addIssue({
        code: 'custom',
        message: `${formatDuration(ms)}${bare ? ' (a bare number counts seconds)' : ''} is shorter than the minimum, ${formatDuration(min)}`,
      });
    } else if (ms > max) {
      ctx.addIssue({ code: 'custom', message: `${formatDuration(ms)} is longer than the maximum, ${formatDuration(max)}` });
    } else return ms;
    return z.NEVER;
  });
/** `a,b` (flag, variable) or `["a", "b"]` (config file): host names or addresses. */
const hostList = z.union([z.string(), z.array(z.string())]).transform((v, ctx) => {
  const names = (Array.isArray(v) ? v : v.split(',')).map((n) => n.trim()).filter((n) => n !== '');
  const canonical = names.map(canonicalHost);
  if (names.length > 100 || canonical.some((n) => n === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'bad host name' });
    return z.NEVER;
  }
  return canonical as string[];
});
/** `512k`, `16M`, `16MiB` or a number of bytes, within the OTA cap's range. */
export const otaFileSize = z.coerce.string().transform((v, ctx) => {
  const bytes = parseSize(v);
  if (bytes === undefined || bytes < OTA_MAX_FILE_SIZE_RANGE.min || bytes > OTA_MAX_FILE_SIZE_RANGE.max) {
    ctx.addIssue({ code: 'custom', message: 'bad size' });
    return z.NEVER;
  }
  return bytes;
});

/** A feature switch: on or off (flags `--no-<feature>`, variables and config.json also take true/false, 1/0, yes/no). */
const onOff = z.string().transform((v, ctx) => {
  const word = v.trim().toLowerCase();
  if (['on', 'true', '1', 'yes'].includes(word)) return true;
  if (['off', 'false', '0', 'no'].includes(word)) return false;
  ctx.addIssue({ code: 'custom', message: 'on or off' });
  return z.NEVER;
});

interface OptionSpec {
  flag: string;
  /** A feature switch: the flag takes no value (`--no-ota`; with `enables`, a flag that turns a feature on). */
  switch?: boolean;
  enables?: boolean;
  env: string;
  allowed: string;
  schema: z.ZodType;
  fallback?: unknown;
  /** Not accepted from config.json (where the config file lives, or secrets better kept elsewhere). */
  notInFile?: boolean;
  /** How a refused value is shown (a URL's password is never printed). */
  shown?: (raw: string) => string;
}

export const START_OPTIONS = {
  dataDir: {
    flag: '--data-dir',
    env: 'MQTTKIT_DATA_DIR',
    allowed: 'a folder path, e.g. /var/lib/mqttkit',
    schema: z.string().min(1),
    fallback: './data',
    notInFile: true,
  },
  mqttPort: { flag: '--mqtt-port', env: 'MQTTKIT_MQTT_PORT', allowed: 'a port number 0-65535 (0 picks a free one), e.g. 1883', schema: port, fallback: 1883 },
  mqttHost: {
    flag: '--mqtt-host',
    env: 'MQTTKIT_MQTT_HOST',
    allowed: 'an IP address or host name to listen on, e.g. 0.0.0.0',
    schema: host,
    fallback: '0.0.0.0',
  },
  mqttUrl: {
    flag: '--mqtt-url',
    env: 'MQTTKIT_MQTT_URL',
    allowed: 'a broker URL such as mqtt://user:pass@192.168.1.2:1883 (mqtt, mqtts, ws, wss)',
    schema: z.string().refine(isBrokerUrl),
  },
  databaseUrl: {
    flag: '--database-url',
    env: 'MQTTKIT_DATABASE_URL',
    allowed: 'a PostgreSQL URL such as postgres://mqttkit:PASSWORD@db.local:5432/mqttkit (not set: the SQLite file in the data dir)',
    schema: z.string().refine(isDatabaseUrl),
    shown: redactUrl,
  },
  failover: {
    flag: '--failover',
    switch: true,
    enables: true,
    env: 'MQTTKIT_FAILOVER',
    allowed: 'on or off: one of two hubs on one --database-url, active or standby (docs/scaling.md)',
    schema: onOff,
    fallback: 'off',
  },
  instanceUrl: {
    flag: '--instance-url',
    env: 'MQTTKIT_INSTANCE_URL',
    allowed:
      "this hub's dashboard address as people and the other hub reach it, e.g. http://hub-a.local:8581 (with --database-url; default: http://<this machine's name>:<http port>)",
    schema: z
      .string()
      .url()
      .refine((v) => /^https?:\/\//.test(v), 'an http:// or https:// address'),
  },
  mqttUsername: {
    flag: '--mqtt-username',
    env: 'MQTTKIT_MQTT_USERNAME',
    allowed: 'the user name the hub logs in to the external broker with, e.g. mqttkit-hub',
    schema: z.string().min(1),
  },
  mqttPassword: {
    flag: '--mqtt-password',
    env: 'MQTTKIT_MQTT_PASSWORD',
    allowed: 'the password for --mqtt-username',
    schema: z.string().min(1),
    notInFile: true,
  },
  hapPort: {
    flag: '--hap-port',
    env: 'MQTTKIT_HAP_PORT',
    allowed: 'a port number 0-65535 (bridge n uses port + n; 0 picks free ones), e.g. 51826',
    schema: port,
    fallback: 51826,
  },
  hapHost: {
    flag: '--hap-host',
    env: 'MQTTKIT_HAP_HOST',
    allowed: 'an IP address to serve HomeKit on (default: all), e.g. 192.168.1.10',
    schema: z.string().refine((v) => isIP(v) !== 0),
  },
  httpPort: {
    flag: '--http-port',
    env: 'MQTTKIT_HTTP_PORT',
    allowed: 'a port number 0-65535 for the dashboard and API (-1: none), e.g. 8581',
    schema: wholeNumber(-1, 65535),
    fallback: 8581,
  },
  httpHost: {
    flag: '--http-host',
    env: 'MQTTKIT_HTTP_HOST',
    allowed: 'the address the dashboard listens on, e.g. 127.0.0.1',
    schema: host,
    fallback: '0.0.0.0',
  },
  httpAllowedHosts: {
    flag: '--http-allowed-hosts',
    env: 'MQTTKIT_HTTP_ALLOWED_HOSTS',
    allowed:
      "more names the dashboard answers to, comma-separated, e.g. hub.example.com,nas.lan (its addresses, localhost, the machine's name and <name>.local always work)",
    schema: hostList,
  },
  httpTls: {
    flag: '--http-tls',
    env: 'MQTTKIT_HTTP_TLS',
    allowed:
      'auto or off, e.g. auto: serve the dashboard over HTTPS with a self-signed certificate made on the first start in <data dir>/https (or give --http-tls-cert and --http-tls-key)',
    schema: z.enum(['auto', 'off']),
    fallback: 'off',
  },
  httpTlsCert: {
    flag: '--http-tls-cert',
    env: 'MQTTKIT_HTTP_TLS_CERT',
    allowed: 'the PEM certificate file (the full chain) for the dashboard over HTTPS, with --http-tls-key, e.g. /etc/mqttkit/https-cert.pem',
    schema: z.string().min(1),
  },
  httpTlsKey: {
    flag: '--http-tls-key',
    env: 'MQTTKIT_HTTP_TLS_KEY',
    allowed: 'the PEM private key file (unencrypted) for --http-tls-cert, e.g. /etc/mqttkit/https-key.pem',
    schema: z.string().min(1),
  },
  otaMaxFileSize: {
    flag: '--ota-max-file-size',
    env: 'MQTTKIT_OTA_MAX_FILE_SIZE',
    allowed: 'a size from 4KiB to 256MiB such as 512k, 16M or 16MiB: the largest file an OTA update sends',
    schema: otaFileSize,
    fallback: OTA_MAX_FILE_SIZE_DEFAULT,
  },
  historyRetention: {
    flag: '--history-retention',
    env: 'MQTTKIT_HISTORY_RETENTION',
    allowed: 'a duration such as 30d, from 1h to 3650d: how long value history is kept',
    schema: duration({ min: 3_600_000, max: 3650 * DAY_MS }),
    fallback: '30d',
  },
  pincode: { flag: '--pincode', env: 'MQTTKIT_PINCODE', allowed: 'a setup code like 123-45-654', schema: z.string().refine((v) => checkPincode(v).ok) },
  bridgeName: {
    flag: '--bridge-name',
    env: 'MQTTKIT_BRIDGE_NAME',
    allowed: 'a name of 2-64 letters, digits and spaces, e.g. Living room',
    schema: z.string().regex(/^[\p{L}\p{N}][\p{L}\p{N} ']{0,62}[\p{L}\p{N}]$/u),
    fallback: 'mqttkit',
  },
  registration: {
    flag: '--registration',
    env: 'MQTTKIT_REGISTRATION',
    allowed:
      'open (a new device registers with its first password), approve (it waits for mqttkit device approve) or closed (only devices added with mqttkit device add)',
    schema: z.enum(REGISTRATION_POLICIES),
    fallback: 'open',
  },
  mqttsPort: {
    flag: '--mqtts-port',
    env: 'MQTTKIT_MQTTS_PORT',
    allowed: 'a port number 0-65535 for MQTT over TLS (needs --tls-cert and --tls-key), e.g. 8883',
    schema: port,
  },
  tlsCert: {
    flag: '--tls-cert',
    env: 'MQTTKIT_TLS_CERT',
    allowed: 'the PEM certificate file for --mqtts-port, e.g. /etc/mqttkit/cert.pem',
    schema: z.string().min(1),
  },
  tlsKey: {
    flag: '--tls-key',
    env: 'MQTTKIT_TLS_KEY',
    allowed: 'the PEM private key file for --mqtts-port, e.g. /etc/mqttkit/key.pem',
    schema: z.string().min(1),
  },
  authMaxDelay: {
    flag: '--auth-max-delay',
    env: 'MQTTKIT_AUTH_MAX_DELAY',
    allowed: 'a duration such as 5s, from 100ms to 10m: the longest pause after a wrong password (it doubles from 100ms per failure)',
    schema: duration({ min: 100, max: 600_000 }),
    fallback: '5s',
  },
  otaHost: {
    flag: '--ota-host',
    env: 'MQTTKIT_OTA_HOST',
    allowed: "this machine's address as devices see it, for OTA downloads (needed with --mqtt-url), e.g. 192.168.1.10",
    schema: z.string().refine((v) => isIP(v) !== 0),
  },
  otaRebootTimeout: {
    flag: '--ota-reboot-timeout',
    env: 'MQTTKIT_OTA_REBOOT_TIMEOUT',
    allowed: 'a duration such as 90s, from 5s to 1h: how long an update waits for a rebooting device',
    schema: duration({ min: 5000, max: 3_600_000 }),
    fallback: '90s',
  },
  otaJobDeadline: {
    flag: '--ota-job-deadline',
    env: 'MQTTKIT_OTA_JOB_DEADLINE',
    allowed: 'a duration such as 30m, from 10s to 24h: how long after its start an OTA job still waits for a device that dropped mid-job',
    schema: duration({ min: 10_000, max: 24 * 3_600_000 }),
    fallback: '30m',
  },
  homekit: {
    flag: '--no-homekit',
    switch: true,
    env: 'MQTTKIT_HOMEKIT',
    allowed: 'on or off: the HomeKit bridges (off: no HAP port opens; MQTT, the dashboard and OTA work as ever)',
    schema: onOff,
    fallback: 'on',
  },
  ota: {
    flag: '--no-ota',
    switch: true,
    env: 'MQTTKIT_OTA',
    allowed: 'on or off: OTA updates (off: no job runs, no pending flag is published, new jobs are refused)',
    schema: onOff,
    fallback: 'on',
  },
  history: {
    flag: '--no-history',
    switch: true,
    env: 'MQTTKIT_HISTORY',
    allowed: 'on or off: value history (off: nothing new is recorded; what was recorded stays readable)',
    schema: onOff,
    fallback: 'on',
  },
  haDiscovery: {
    flag: '--ha-discovery',
    switch: true,
    enables: true,
    env: 'MQTTKIT_HA_DISCOVERY',
    allowed: 'on or off: Home Assistant MQTT discovery configs for every device (docs/protocol.md 4.5)',
    schema: onOff,
    fallback: 'off',
  },
  haDiscoveryPrefix: {
    flag: '--ha-discovery-prefix',
    env: 'MQTTKIT_HA_DISCOVERY_PREFIX',
    allowed: "Home Assistant's discovery prefix (its MQTT integration's setting), letters, digits, _ and -, e.g. homeassistant",
    schema: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and -')
      .refine((v) => !(RESERVED_DEVICE_IDS as readonly string[]).includes(v), 'not a topic root of the device protocol (HomeKit, cmnd, stat, tele, OTA)'),
    fallback: 'homeassistant',
  },
  matter: {
    flag: '--matter',
    switch: true,
    enables: true,
    env: 'MQTTKIT_MATTER',
    allowed: 'on or off: a Matter bridge for Google Home, Alexa, SmartThings, Home Assistant and Apple Home (docs/matter.md)',
    schema: onOff,
    fallback: 'off',
  },
  matterPort: {
    flag: '--matter-port',
    env: 'MQTTKIT_MATTER_PORT',
    allowed: "the Matter bridge's UDP port 0-65535 (0 picks a free one), e.g. 5540",
    schema: port,
    fallback: 5540,
  },
  yieldBackground: {
    flag: '--no-yield-background',
    switch: true,
    env: 'MQTTKIT_YIELD_BACKGROUND',
    allowed:
      "on or off: V8's background threads (JIT compiles, GC helpers) run as SCHED_BATCH at nice +5 so they do not preempt the event loop (Linux with util-linux's chrt; docs/benchmarks.md)",
    schema: onOff,
    fallback: 'on',
  },
  logLevel: { flag: '--log-level', env: 'MQTTKIT_LOG_LEVEL', allowed: LOG_LEVELS.join(', '), schema: z.enum(LOG_LEVELS), fallback: 'info' },
  deviceTtl: {
    flag: '--device-ttl',
    env: 'MQTTKIT_DEVICE_TTL',
    allowed: 'a duration such as 7d or 12h, from 1h to 3650d (under a day, with its unit): devices silent this long are removed',
    schema: duration({ min: 3_600_000, max: 3650 * DAY_MS, unitRequiredBelow: DAY_MS }),
    fallback: '7d',
  },
  confirmTimeout: {
    flag: '--confirm-timeout',
    env: 'MQTTKIT_CONFIRM_TIMEOUT',
    allowed: 'a duration such as 10s or 1500ms, from 100ms to 5m',
    schema: duration({ min: 100, max: 300_000 }),
    fallback: '10s',
  },
} satisfies Record<string, OptionSpec>;

export type StartOptionName = keyof typeof START_OPTIONS;
export type RawOptions = Partial<Record<StartOptionName, string>>;

export interface ResolvedStart {
  hub: HubOptions;
  logLevel: LogLevel;
  /** `--no-yield-background` turns it off: V8's background threads as SCHED_BATCH (src/hub/background-threads.ts). */
  yieldBackground: boolean;
}

export class OptionError extends Error {}

/** postgres:// or postgresql:// with a host: the only engine --database-url takes. */
function isDatabaseUrl(value: string): boolean {
  if (!isPostgresUrl(value)) return false;
  try {
    return new URL(value).hostname !== '' || /[?&]host=/.test(value);
  } catch {
    return false;
  }
}

function isBrokerUrl(value: string): boolean {
  try {
    return ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

/** Reads flags, environment and config file into the hub's options, or throws an OptionError that says what to fix. */
export function resolveStartOptions(flags: RawOptions, env: NodeJS.ProcessEnv = process.env): ResolvedStart {
  const dataDir = resolve(flags.dataDir ?? env.MQTTKIT_DATA_DIR ?? String(START_OPTIONS.dataDir.fallback));
  const file = readConfigFile(dataDir);
  const values: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const [name, spec] of Object.entries(START_OPTIONS) as Array<[StartOptionName, OptionSpec]>) {
    const fromFlag = flags[name];
    const fromEnv = env[spec.env];
    const fromFile = file[name];
    const [raw, source] =
      fromFlag !== undefined
        ? [fromFlag, spec.flag]
        : fromEnv !== undefined && fromEnv !== ''
          ? [fromEnv, spec.env]
          : fromFile !== undefined
            ? [fromFile, `${CONFIG_FILE} "${name}"`]
            : [spec.fallback, 'default'];
    if (raw === undefined) continue;
    const where = source === spec.flag ? spec.flag : `${spec.flag} (set by ${source})`;
    // Flags and variables are text; config.json may hold numbers (or a list of names): all go through the same text parser.
    const text =
      Array.isArray(raw) && raw.every((item) => typeof item === 'string') ? raw.join(',') : typeof raw === 'boolean' && spec.switch ? String(raw) : raw;
    if (typeof text !== 'string' && typeof text !== 'number') {
      throw new OptionError(
        `${where}: ${JSON.stringify(raw)} is not valid; expected ${spec.allowed} (a string or a number, not ${raw === null ? 'null' : Array.isArray(raw) ? 'a list' : typeof raw})`,
      );
    }
    const parsed = spec.schema.safeParse(String(text));
    if (!parsed.success) {
      const reason = parsed.error.issues.map((issue) => issue.message).find((m) => m !== '' && !m.startsWith('Invalid'));
      const shown = (spec as OptionSpec).shown?.(String(raw)) ?? String(raw);
      throw new OptionError(`${where}: '${shown}' is not valid; expected ${spec.allowed}${reason ? ` (${reason})` : ''}`);
    }
    values[name] = parsed.data;
    sources[name] = source;
  }
  if (values.mqttUrl !== undefined) {
    for (const name of ['mqttPort', 'mqttHost'] as const) {
      if (sources[name] !== 'default') {
        throw new OptionError(
          `${START_OPTIONS.mqttUrl.flag} uses an external broker, so ${START_OPTIONS[name].flag} (set by ${sources[name]}) has no meaning: drop one of them`,
        );
      }
    }
  }
  const v = values as {
    mqttPort: number;
    mqttHost: string;
    mqttUrl?: string;
    databaseUrl?: string;
    instanceUrl?: string;
    failover: boolean;
    mqttUsername?: string;
    mqttPassword?: string;
    hapPort: number;
    hapHost?: string;
    httpPort: number;
    pincode?: string;
    bridgeName: string;
    logLevel: LogLevel;
    deviceTtl: number;
    confirmTimeout: number;
    registration: RegistrationPolicy;
    mqttsPort?: number;
    tlsCert?: string;
    tlsKey?: string;
    authMaxDelay: number;
    otaHost?: string;
    otaRebootTimeout: number;
    httpHost: string;
    historyRetention: number;
    httpAllowedHosts?: string[];
    httpTls: 'auto' | 'off';
    httpTlsCert?: string;
    httpTlsKey?: string;
    otaMaxFileSize: number;
    otaJobDeadline: number;
    homekit: boolean;
    ota: boolean;
    history: boolean;
    haDiscovery: boolean;
    haDiscoveryPrefix: string;
    matter: boolean;
    matterPort: number;
    yieldBackground: boolean;
  };
  const tlsGiven = [v.mqttsPort, v.tlsCert, v.tlsKey].filter((x) => x !== undefined).length;
  if (tlsGiven > 0 && tlsGiven < 3) throw new OptionError('--mqtts-port, --tls-cert and --tls-key go together: give all three for an MQTT-over-TLS listener');
  if (v.mqttUrl !== undefined && tlsGiven > 0)
    throw new OptionError('--mqtts-port belongs to the embedded broker; with --mqtt-url configure TLS on your broker');
  if (v.mqttUrl !== undefined && sources.registration !== 'default' && v.registration !== 'closed') {
    throw new OptionError(
      `--registration ${v.registration} needs the embedded broker: an external broker cannot register devices on first connect, so devices are added with 'mqttkit device add'`,
    );
  }
  if ((v.httpTlsCert === undefined) !== (v.httpTlsKey === undefined))
    throw new OptionError(
      '--http-tls-cert and --http-tls-key go together: give both for HTTPS with your own certificate (or --http-tls auto for a self-signed one)',
    );
  if (v.httpTlsCert !== undefined && v.httpTls === 'auto')
    throw new OptionError('--http-tls auto makes a self-signed certificate, --http-tls-cert gives yours: drop one of them');
  if (v.failover && v.databaseUrl === undefined)
    throw new OptionError('--failover needs --database-url: the two hubs share a PostgreSQL database (docs/scaling.md)');
  if (v.failover && v.mqttUrl === undefined)
    throw new OptionError(
      '--failover needs --mqtt-url: devices must reach the same broker whichever hub is active (an embedded broker lives and dies with its hub)',
    );
  if (v.instanceUrl !== undefined && !v.failover) throw new OptionError('--instance-url is for --failover (how the standby sends people to the active hub)');
  const saved = v.mqttUrl !== undefined && v.mqttUsername === undefined ? readBrokerCredentials(dataDir) : undefined;
  return {
    logLevel: v.logLevel,
    yieldBackground: v.yieldBackground,
    hub: {
      dataDir,
      databaseUrl: v.databaseUrl,
      // [H-3] --failover: one of two hubs on a shared PostgreSQL, active or standby; how people reach it.
      cluster:
        v.databaseUrl && v.failover
          ? {
              instanceUrl:
                v.instanceUrl ??
                `${v.httpTls === 'auto' || v.httpTlsCert ? 'https' : 'http'}://${hostname()}:${v.httpPort === 0 || v.httpPort === -1 ? 8581 : v.httpPort}`,
            }
          : undefined,
      mqtt:
        v.mqttUrl !== undefined
          ? { kind: 'external', url: v.mqttUrl, username: v.mqttUsername ?? saved?.username, password: v.mqttPassword ?? saved?.password }
          : {
              kind: 'embedded',
              host: v.mqttHost,
              port: v.mqttPort,
              registration: v.registration,
              authMaxDelayMs: v.authMaxDelay,
              tls: v.mqttsPort !== undefined ? { port: v.mqttsPort, certFile: resolve(v.tlsCert!), keyFile: resolve(v.tlsKey!) } : undefined,
            },
      hapPort: v.hapPort,
      hapHost: v.hapHost,
      httpPort: v.httpPort,
      httpHost: v.httpHost,
      httpAllowedHosts: v.httpAllowedHosts ?? [],
      httpTls:
        v.httpTlsCert !== undefined
          ? { kind: 'files', certFile: resolve(v.httpTlsCert), keyFile: resolve(v.httpTlsKey!) }
          : v.httpTls === 'auto'
            ? { kind: 'auto' }
            : undefined,
      otaMaxFileSize: v.otaMaxFileSize,
      historyRetentionMs: v.historyRetention,
      pincode: v.pincode,
      bridgeName: v.bridgeName,
      deviceTtlMs: v.deviceTtl,
      writeTimeoutMs: v.confirmTimeout,
      otaRebootTimeoutMs: v.otaRebootTimeout,
      otaJobDeadlineMs: v.otaJobDeadline,
      otaHost: v.otaHost,
      homekit: v.homekit,
      ota: v.ota,
      history: v.history,
      haDiscovery: v.haDiscovery ? { prefix: v.haDiscoveryPrefix } : undefined,
      matter: v.matter ? { port: v.matterPort } : undefined,
    },
  };
}

function readConfigFile(dataDir: string): Record<string, unknown> {
  const path = join(dataDir, CONFIG_FILE);
  if (!existsSync(path)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new OptionError(`${path} is not valid JSON (${(error as Error).message}): fix it or remove it`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new OptionError(`${path} must hold a JSON object such as {"mqttPort": 1883}`);
  }
  const allowed = Object.entries(START_OPTIONS as Record<string, OptionSpec>)
    .filter(([, s]) => !s.notInFile)
    .map(([n]) => n);
  for (const key of Object.keys(parsed)) {
    if (!allowed.includes(key)) {
      const spec = (START_OPTIONS as Record<string, OptionSpec>)[key];
      const why = spec?.notInFile
        ? `"${key}" cannot be set in the config file; use ${spec.flag} or ${spec.env}`
        : `unknown setting "${key}"${didYouMean(key, allowed)}`;
      throw new OptionError(`${path}: ${why} (known: ${allowed.join(', ')})`);
    }
  }
  return parsed as Record<string, unknown>;
}

/**
 * One start option for a command other than `start` (e.g. the OTA cap for `mqttkit ota push`), with
 * the same precedence: the command's flag, the variable, the data dir's config.json, the default.
 */
export function resolveStartOption<T>(name: StartOptionName, flag: string | undefined, dataDir: string, env: NodeJS.ProcessEnv = process.env): T | undefined {
  const spec: OptionSpec = START_OPTIONS[name];
  const fromFile = flag === undefined && !env[spec.env] ? readConfigFile(dataDir)[name] : undefined;
  const [raw, source] =
    flag !== undefined
      ? [flag, spec.flag]
      : env[spec.env]
        ? [env[spec.env], spec.env]
        : fromFile !== undefined
          ? [fromFile, `${CONFIG_FILE} "${name}"`]
          : [spec.fallback, 'default'];
  if (raw === undefined) return undefined;
  const parsed = spec.schema.safeParse(raw);
  if (!parsed.success)
    throw new OptionError(
      `${source === spec.flag ? spec.flag : `${spec.flag} (set by ${source})`}: '${spec.shown?.(String(raw)) ?? String(raw)}' is not valid; expected ${spec.allowed}`,
    );
  return parsed.data as T;
}
