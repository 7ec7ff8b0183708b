/** `mqttkit backup <file>` and `mqttkit restore <file>`: the whole hub state in one owner-only file. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { VERSION } from '../hub/version.js';
import { BackupError, restoreBackup, takeBackup } from '../store/backup.js';
import { redactUrl } from '../store/engine/sql-engine.js';
import { OptionError, resolveStartOption } from './options.js';
import { action, CliError } from './workspace.js';

interface Flags {
  dataDir?: string;
  force?: boolean;
  json?: boolean;
}

const SECRETS_NOTE =
  'It holds secrets (the HomeKit bridge keys and pairings, password hashes of device and admin accounts, and the broker login if any): keep it private. It was created readable by you only.';

const dataDirOf = (flags: Flags) => resolve(flags.dataDir ?? process.env.MQTTKIT_DATA_DIR ?? './data');

/** A backup copies the SQLite file: with the store in PostgreSQL (MQTTKIT_DATABASE_URL, config.json databaseUrl) it is refused, naming the tool that backs Postgres up. */
function refuseWithPostgres(dataDir: string, what: 'backup' | 'restore'): void {
  let url: string | undefined;
  try {
    url = resolveStartOption<string>('databaseUrl', undefined, dataDir);
  } catch (error) {
    if (error instanceof OptionError) throw new CliError(error.message, 2);
    throw error;
  }
  if (url === undefined) return;
  throw new CliError(
    what === 'backup'
      ? `the hub in ${dataDir} keeps its store in PostgreSQL (${redactUrl(url)}): 'mqttkit backup' copies the SQLite file only. Back the database up with pg_dump (pg_dump -Fc -f mqttkit.dump '<database url>') and copy ${dataDir}/homekit/ with it (the HomeKit keys, pairings and ids)`
      : `the hub in ${dataDir} keeps its store in PostgreSQL (${redactUrl(url)}): 'mqttkit restore' writes a SQLite file. Restore the database with pg_restore and ${dataDir}/homekit/ from your copy`,
  );
}

export function registerBackup(program: Command): void {
  program
    .command('backup <file>')
    .description('write the hub state (database, HomeKit keys, pairings and ids, config) to one file; safe while the hub runs')
    .option('--data-dir <DIR>', "the hub's data dir (default: ./data) [MQTTKIT_DATA_DIR]")
    .option('--force', 'replace <file> if it exists')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mqttkit backup /mnt/usb/mqttkit-2026-11-27.backup\n  $ mqttkit restore /mnt/usb/mqttkit-2026-11-27.backup --data-dir /var/lib/mqttkit',
    )
    .action(
      action(async (file: string, flags: Flags) => {
        process.umask(0o077);
        refuseWithPostgres(dataDirOf(flags), 'backup');
        const summary = await wrap(() => takeBackup(dataDirOf(flags), resolve(file), { force: flags.force === true, version: VERSION }));
        if (flags.json) return console.log(JSON.stringify({ ...summary, pincode: undefined, secrets: true }));
        console.log(
          [
            `Backup written to ${summary.file} (${(summary.bytes / 1024).toFixed(0)} KiB): ${summary.devices} devices, ${summary.accounts} accounts, ${summary.bridges} HomeKit bridge(s).`,
            ...(summary.matterFiles > 0
              ? [
                  `Matter: ${summary.matterFiles} files (fabrics, keys, pairing code), copied once unchanged for ${summary.matterQuietMs} ms; a backup of a stopped hub is exact.`,
                ]
              : []),
            ...(summary.https ? ["HTTPS: the dashboard's certificate and its key (same fingerprint after a restore)."] : []),
            SECRETS_NOTE,
            `Restore it with: mqttkit restore ${summary.file} --data-dir <a new data dir>`,
          ].join('\n'),
        );
      }),
    );

  program
    .command('restore <file>')
    .description('restore a backup into a data dir (a new one, or with --force over an existing state); the hub there must be stopped')
    .option('--data-dir <DIR>', 'the data dir to restore into (default: ./data) [MQTTKIT_DATA_DIR]')
    .option('--force', 'restore over an existing state (it is moved aside to <name>.before-restore-<time>, not deleted)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  $ mqttkit restore hub.backup --data-dir /var/lib/mqttkit\n  $ mqttkit restore hub.backup --data-dir ./data --force')
    .action(
      action(async (file: string, flags: Flags) => {
        process.umask(0o077);
        const dataDir = dataDirOf(flags);
        refuseWithPostgres(dataDir, 'restore');
        const summary = await wrap(() => restoreBackup(resolve(file), dataDir, { force: flags.force === true }));
        if (flags.json) return console.log(JSON.stringify({ ...summary, pincode: undefined, dataDir }));
        console.log(
          [
            `Restored the backup of ${summary.createdAt} into ${dataDir}: ${summary.devices} devices, ${summary.accounts} accounts, ${summary.bridges} HomeKit bridge(s) with their pairings.`,
            ...(summary.matterFiles > 0 ? ['Matter: the bridge with its fabrics and pairing code (controllers need no new commissioning).'] : []),
            ...(summary.https ? ["HTTPS: the dashboard's certificate and key."] : []),
            ...summary.movedAside.map((m) => `Moved the previous ${m}`),
            ...(summary.keptConfig ? [`Kept the config.json already in ${dataDir} (the backup's was not applied).`] : []),
            summary.pincode ? `HomeKit setup code: ${summary.pincode} (paired iPhones need no new pairing)` : '',
            `Start the hub with: mqttkit start --data-dir ${dataDir}`,
          ]
            .filter(Boolean)
            .join('\n'),
        );
      }),
    );
}

/** Backup errors are messages for a person: exit 1 with the message, no stack. */
async function wrap<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof BackupError) throw new CliError(error.message);
    throw error;
  }
}
