/** `mqttkit start`: resolve options, run the hub, stop cleanly on SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { type BackgroundThreadsResult, findBackgroundThreads, yieldBackgroundThreads } from '../hub/background-threads.js';
import { ClusteredHub } from '../hub/clustered-hub.js';
import { Faults } from '../hub/faults.js';
import { Hub } from '../hub/hub.js';
import { createLogger, type Logger } from '../log/logger.js';
import { DamagedStateError } from '../store/state-check.js';
import { startBanner } from './banner.js';
import { OptionError, type RawOptions, resolveStartOptions, START_OPTIONS } from './options.js';

/** A hub that does not stop within this time is killed: SIGTERM must mean "gone soon". */
const STOP_DEADLINE_MS = 5000;

export function registerStart(program: Command): void {
  const command = program
    .command('start')
    .description('run the hub: MQTT broker (or a link to yours) and the HomeKit bridge')
    .addHelpText(
      'after',
      `
Each option can also come from an environment variable (shown) or from <data-dir>/config.json
(the option's camelCase name, e.g. {"mqttPort": 1884}); flags win over variables, variables over the file.

Examples:
  $ mqttkit start
  $ mqttkit start --data-dir /var/lib/mqttkit --pincode 031-45-154
  $ mqttkit start --mqtt-url mqtt://192.168.1.2:1883 --mqtt-username hub
  $ MQTTKIT_LOG_LEVEL=debug npm start`,
    );
  for (const [name, spec] of Object.entries(START_OPTIONS)) {
    if ('switch' in spec) {
      const what = spec.allowed.replace(/^on or off: /, '');
      command.option(spec.flag, 'enables' in spec ? `turn on ${what} [${spec.env}=on]` : `turn off ${what} [${spec.env}=off]`);
      continue;
    }
    const placeholder = name === 'pincode' ? 'XXX-XX-XXX' : name.endsWith('Port') ? 'N' : name === 'logLevel' ? 'LEVEL' : 'VALUE';
    const fallback = 'fallback' in spec ? ` (default: ${String(spec.fallback)})` : '';
    command.option(`${spec.flag} <${placeholder}>`, `${spec.allowed}${fallback} [${spec.env}]`);
  }
  command.option(
    '--reset-state',
    'when the state in the data dir is damaged, move the damaged files aside (<name>.damaged-<time>) and start with what is left, instead of refusing to start',
  );
  command.action(async (flags: RawOptions & { resetState?: boolean }, cmd: Command) => {
    let resolved;
    try {
      // Commander sets a `--no-x` option's value to true by default: only a flag given counts (so variables and config.json still apply).
      for (const [name, spec] of Object.entries(START_OPTIONS)) {
        if (!('switch' in spec)) continue;
        const raw = flags as Record<string, unknown>;
        if (cmd.getOptionValueSource(name) === 'cli') raw[name] = 'enables' in spec ? 'on' : 'off';
        else delete raw[name];
      }
      resolved = resolveStartOptions(flags);
      resolved.hub.resetState = flags.resetState === true;
    } catch (error) {
      if (!(error instanceof OptionError)) throw error;
      console.error(`mqttkit: ${error.message}`);
      process.exit(2);
    }
    // Everything the hub writes (HomeKit keys, state, runtime file) is for its owner only.
    process.umask(0o077);
    // Before the logger: on a terminal it writes through a worker thread, and a thread count Node does not
    // start makes V8's threads impossible to tell apart.
    const threads = resolved.yieldBackground ? findBackgroundThreads() : undefined;
    const log = createLogger(resolved.logLevel);
    // From here on no unhandled rejection or uncaught exception ends the hub: logged, counted, survived.
    const faults = new Faults(log);
    faults.installProcessHandlers();
    if (threads) void yieldBackgroundThreads(threads).then((result) => logThreads(log, result));
    const cluster = resolved.hub.cluster;
    if (resolved.hub.databaseUrl && cluster) {
      await runClustered({ ...resolved.hub, databaseUrl: resolved.hub.databaseUrl, cluster }, log, faults);
      return;
    }
    let hub: Hub;
    try {
      hub = await Hub.start(resolved.hub, log, faults);
    } catch (error) {
      if (error instanceof DamagedStateError) {
        // Several lines a person reads and acts on: not squeezed into one log record.
        log.flush();
        console.error(`mqttkit: ${error.message}`);
        process.exitCode = 1;
        setTimeout(() => process.exit(1), 200).unref();
        return;
      }
      log.fatal(`cannot start: ${(error as Error).message}`);
      log.flush();
      process.exitCode = 1;
      setTimeout(() => process.exit(1), 200).unref();
      return;
    }
    const stop = stopper(
      log,
      () => hub.stop(),
      () => log.info({ faults: faults.snapshot() }, 'stopped'),
    );
    // Before the banner: whoever reads "mqttkit is running" may signal at once.
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    console.log(await startBanner(hub));
  });
}

/** What became of V8's background threads: a line at debug level, a warning only when some could not be changed. */
function logThreads(log: Logger, threads: BackgroundThreadsResult): void {
  if (threads.skipped) log.debug(`V8's background threads keep the event loop's scheduling: ${threads.skipped}`);
  if (threads.batched.length > 0)
    log.debug(`V8's background threads (${threads.batched.join(', ')}) run as SCHED_BATCH at nice +5: they do not preempt the event loop`);
  for (const { tid, reason } of threads.failed) log.warn(`V8's background thread ${tid}: ${reason} (--no-yield-background stops trying)`);
}

/**
 * [H-3] On a shared PostgreSQL: active or standby as the lock decides; the banner when this process's hub
 * runs, a line when it waits. A hub that takes the role but cannot start ends the process, so the other
 * instance can take over.
 */
async function runClustered(options: Parameters<typeof ClusteredHub.start>[0], log: Logger, faults: Faults): Promise<void> {
  let cluster: ClusteredHub | undefined;
  const stop = stopper(log, () => cluster?.stop() ?? Promise.resolve());
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    cluster = await ClusteredHub.start(options, log, faults, {
      active: async (hub) => console.log(await startBanner(hub)),
      standby: (why) =>
        console.log(`mqttkit is the standby (${why}): it takes over when the active instance is gone; ${options.cluster.instanceUrl}/api/health says so`),
      failed: () => stop('cannot start', 1),
      // [H-1] Demoted and not stopped in time: the bridges must go now, not after a graceful stop.
      abandon: () => {
        log.flush();
        process.exit(1);
      },
    });
  } catch (error) {
    log.fatal(`cannot start: ${(error as Error).message}`);
    log.flush();
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 200).unref();
  }
}

/**
 * Stops once, however often it is asked: logs why, ends the process with `code` when `end` resolves (1
 * when it fails), and kills it outright past STOP_DEADLINE_MS (SIGTERM must mean "gone soon").
 */
function stopper(log: Logger, end: () => Promise<void>, stopped: () => void = () => {}): (signal: string, code?: number) => void {
  let stopping = false;
  return (signal, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: stopping`);
    setTimeout(() => {
      log.error('did not stop in time; exiting');
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    end().then(
      () => {
        stopped();
        log.flush();
        process.exit(code);
      },
      (error: unknown) => {
        log.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
}
