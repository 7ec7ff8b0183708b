/** `mqttkit migrate --from <data-dir> --to postgres://…`: an existing SQLite install into PostgreSQL. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DATABASE_FILE, openDatabase } from '../store/database.js';
import { isPostgresUrl } from '../store/engine/open.js';
import { PostgresEngine } from '../store/engine/postgres-engine.js';
import { redactSecret, redactUrl } from '../store/engine/sql-engine.js';
import { runningHubPid } from '../store/runtime-file.js';
import { copySqliteToPostgres, MigrationRefused } from '../store/sqlite-to-postgres.js';
import { checkState, describeProblems } from '../store/state-check.js';
import { action, CliError } from './workspace.js';

interface Flags {
  from?: string;
  to?: string;
  json?: boolean;
}

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description("copy a data dir's SQLite store (every table) into an empty PostgreSQL database, with each table's row count checked")
    .requiredOption('--from <DATA-DIR>', 'the data dir whose mqttkit.db is copied (the hub there must be stopped)')
    .requiredOption('--to <URL>', 'an empty PostgreSQL database, e.g. postgres://mqttkit:PASSWORD@db.local/mqttkit')
    .option('--json', 'print the row counts as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ createdb mqttkit
  $ mqttkit migrate --from /var/lib/mqttkit --to postgres://mqttkit:secret@localhost/mqttkit
  $ mqttkit start --data-dir /var/lib/mqttkit --database-url postgres://mqttkit:secret@localhost/mqttkit

Everything is copied in one transaction: on any error or a row count that differs, nothing is kept.
The data dir itself stays as it is (mqttkit.db is not changed); the HomeKit files (homekit/), config.json
and the broker login stay there and are still used with --database-url.`,
    )
    .action(
      action(async (flags: Flags) => {
        const dataDir = resolve(flags.from!);
        const url = flags.to!;
        if (!isPostgresUrl(url))
          throw new CliError(`--to: '${redactUrl(url)}' is not a PostgreSQL URL; expected postgres://user:password@host:5432/database`, 2);
        const file = join(dataDir, DATABASE_FILE);
        if (!existsSync(file)) throw new CliError(`no ${DATABASE_FILE} in ${dataDir}: --from takes the data dir of a hub that used SQLite`);
        const hub = runningHubPid(dataDir);
        if (hub) throw new CliError(`a hub is running on ${dataDir} (pid ${hub}): stop it first, so that nothing it writes during the copy is lost`);
        const problems = checkState(dataDir);
        if (problems.length > 0) throw new CliError(describeProblems(dataDir, problems, 'migrate it'));
        let source: ReturnType<typeof openDatabase>;
        try {
          source = openDatabase(file);
        } catch (error) {
          throw new CliError((error as Error).message);
        }
        let target: PostgresEngine;
        try {
          target = await PostgresEngine.connect(url);
        } catch (error) {
          source.close();
          throw new CliError((error as Error).message);
        }
        try {
          const print = flags.json ? () => {} : ({ table, rows }: { table: string; rows: number }) => console.log(`  ${table.padEnd(16)} ${rows}`);
          if (!flags.json) console.log(`Copying ${file} into ${target.where}:`);
          const counts = await copySqliteToPostgres(source, target, print);
          if (flags.json) console.log(JSON.stringify({ from: file, to: target.where, tables: counts }, null, 2));
          else
            console.log(
              [
                `Done: ${counts.reduce((n, c) => n + c.rows, 0)} rows in ${counts.length} tables, each count checked against ${DATABASE_FILE}.`,
                `Start the hub on it with: mqttkit start --data-dir ${dataDir} --database-url '${target.where}' (with the real password, or set MQTTKIT_DATABASE_URL)`,
              ].join('\n'),
            );
        } catch (error) {
          if (error instanceof MigrationRefused || error instanceof CliError) throw new CliError(error.message);
          throw new CliError(`the copy failed and was rolled back (the target is left empty): ${redactSecret(target.explain(error), url)}`);
        } finally {
          source.close();
          await target.close();
        }
      }),
    );
}
