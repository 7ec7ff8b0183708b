/** `mqttkit simulate`: a fleet of virtual devices for demos, tests and benchmarks. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Fleet } from '../../device/simulator/fleet.js';
import { KIND_NAMES, type KindName } from '../../device/simulator/kinds.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { readRuntime } from '../store/runtime-file.js';
import { action, CliError, wholeNumber } from './workspace.js';

interface Flags {
  devices: string;
  kinds: string;
  prefix: string;
  interval: string;
  jitter: string;
  sleep: string;
  url?: string;
  dataDir?: string;
}

const SECRET_FILE = 'simulator-secret';

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('run virtual devices (thermometers, hygrometers, switches, lights, sleepy sensors) against the hub')
    .option('--devices <N>', 'how many devices', '20')
    .option('--kinds <LIST>', `comma-separated kinds, dealt round-robin: ${KIND_NAMES.join(', ')}`, KIND_NAMES.join(','))
    .option('--prefix <TEXT>', 'device id prefix', 'sim')
    .option('--interval <S>', 'seconds between readings', '10')
    .option('--jitter <F>', 'how much each interval varies, 0..1', '0.2')
    .option('--sleep <S>', 'seconds a sleepy device sleeps', '60')
    .option('--url <URL>', 'the broker (default: the hub running on --data-dir, else mqtt://127.0.0.1:1883)')
    .option('--data-dir <DIR>', "the hub's data dir (default: ./data) [MQTTKIT_DATA_DIR]")
    .addHelpText(
      'after',
      '\nExamples:\n  $ npm start                         # in one terminal\n  $ npx mqttkit simulate --devices 20  # in another: the Home app fills up\n  $ npx mqttkit simulate --devices 500 --kinds temperature --interval 0.5\n  $ npx mqttkit ota firmware sim-switch-03 examples/app.bin   # they take OTA jobs (A/B firmware too)',
    )
    .action(
      action(async (flags: Flags) => {
        const devices = wholeNumber(flags.devices, '--devices', 1, 5000);
        const kinds = flags.kinds.split(',').map((k) => k.trim()) as KindName[];
        const unknown = kinds.filter((k) => !KIND_NAMES.includes(k));
        if (unknown.length > 0) throw new CliError(`--kinds: unknown ${unknown.join(', ')}; use ${KIND_NAMES.join(', ')}`, 2);
        const interval = positive(flags.interval, '--interval');
        const jitter = Number(flags.jitter);
        if (!(jitter >= 0 && jitter <= 1)) throw new CliError(`--jitter: '${flags.jitter}' is not a number from 0 to 1`, 2);
        const dataDir = resolve(flags.dataDir ?? process.env.MQTTKIT_DATA_DIR ?? './data');
        const url = flags.url ?? readRuntime(dataDir)?.mqtt.address.replace('0.0.0.0', '127.0.0.1') ?? 'mqtt://127.0.0.1:1883';

        const fleet = new Fleet({
          url,
          devices,
          kinds,
          prefix: flags.prefix,
          secret: simulatorSecret(dataDir),
          interval,
          jitter,
          sleepSeconds: positive(flags.sleep, '--sleep'),
          onProgress: (n, total) => {
            if (n === total || n % 50 === 0) console.log(`connected ${n}/${total}`);
          },
        });
        let stopping = false;
        const stop = async () => {
          if (stopping) return;
          stopping = true;
          console.log('stopping: devices go offline');
          await fleet.stop();
          process.exit(0);
        };
        process.on('SIGINT', () => void stop());
        process.on('SIGTERM', () => void stop());
        console.log(`simulating ${devices} devices against ${url}`);
        const failures = await fleet.start();
        for (const f of failures.slice(0, 5)) console.error(`${f.id}: ${f.error}`);
        if (failures.length > 0) console.error(`${failures.length} devices could not connect (is registration open? see 'mqttkit device list')`);
        console.log(`running ${devices - failures.length} devices; Ctrl-C stops them`);
        // A small fleet names its devices: the ids `mqttkit cmd`, `logs` and `conformance` take.
        const up = fleet.devices.map((d) => d.id).filter((id) => !failures.some((f) => f.id === id));
        if (up.length > 0 && up.length <= 10) console.log(`device ids: ${up.join(', ')} (e.g. mqttkit conformance ${up[0]!})`);
      }),
    );
}

/** Passwords derive from a secret kept beside the hub's data, so a restarted simulator is the same fleet. */
function simulatorSecret(dataDir: string): string {
  const file = join(dataDir, SECRET_FILE);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('hex');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(file, secret);
  return secret;
}

function positive(text: string, flag: string): number {
  const n = Number(text);
  if (!(n > 0)) throw new CliError(`${flag}: '${text}' is not a positive number of seconds`, 2);
  return n;
}
