/**
 * The start-up check of a data dir's state ([D-3]): a damaged or missing store beside others that
 * exist is named and refused, never silently replaced by a new one. `--reset-state` moves the damaged
 * files aside (to `<name>.damaged-<time>`) so the hub can start fresh without destroying evidence.
 */

import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseJson } from '../core/json.js';
import { syncDirectory } from './atomic-file.js';
import { BROKER_CREDENTIALS_FILE, credentialsSchema } from './broker-credentials.js';
import { DATABASE_FILE, databaseFileProblem } from './database.js';
import { bridgeFileId, PUBLISHED_SETTING_PREFIX, type StateStore } from './state-store.js';

export const HOMEKIT_DIR = 'homekit';

/** The files HAP-NodeJS keeps per bridge; the 12 hex digits are the bridge's username. */
export const HOMEKIT_FILE = /^(AccessoryInfo|IdentifierCache|ControllerStorage)\.([0-9A-F]{12})\.json$/;

export interface StateProblem {
  /** The file, relative to the data dir. */
  file: string;
  problem: string;
  /** What --reset-state does about it: files (relative) to move aside, a bridge to treat as never published. */
  reset: { moveAside: string[]; forgetBridge?: string };
}

export class DamagedStateError extends Error {
  constructor(
    readonly dataDir: string,
    readonly problems: StateProblem[],
  ) {
    super(describeProblems(dataDir, problems));
  }
}

interface DatabaseFacts {
  bridges: Array<{ index: number; id: string }>;
  published: Set<string>;
}

/**
 * Every problem of the data dir's state; none for a new (missing or empty) data dir. `deep` runs SQLite's
 * quick_check. With `external` (the store is in PostgreSQL, --database-url) there is no `mqttkit.db` to
 * check: the HomeKit files and the broker login are checked, the database is the server's to keep whole.
 */
export function checkState(dataDir: string, { deep = true, external = false } = {}): StateProblem[] {
  if (!existsSync(dataDir)) return [];
  const problems: StateProblem[] = [];
  const homekitFiles = listHomeKitFiles(dataDir);
  for (const name of homekitFiles) {
    const file = `${HOMEKIT_DIR}/${name}`;
    const problem = homeKitFileProblem(name, readFileSync(join(dataDir, file), 'utf8'));
    if (problem) problems.push({ file, problem, reset: { moveAside: [file] } });
  }
  const credentials = join(dataDir, BROKER_CREDENTIALS_FILE);
  if (existsSync(credentials)) {
    const problem = credentialsProblem(readFileSync(credentials, 'utf8'));
    if (problem)
      problems.push({
        file: BROKER_CREDENTIALS_FILE,
        problem: `${problem}: the hub cannot log in to the external broker; run 'mqttkit mosquitto-config' again`,
        reset: { moveAside: [BROKER_CREDENTIALS_FILE] },
      });
  }
  if (external) return problems;
  const dbPath = join(dataDir, DATABASE_FILE);
  if (!existsSync(dbPath)) {
    const keys = homekitFiles.filter((name) => !name.startsWith('ControllerStorage.'));
    if (keys.length > 0) {
      problems.push({
        file: DATABASE_FILE,
        problem: `is missing, while ${HOMEKIT_DIR}/ holds HomeKit keys and ids (${keys.join(', ')}): devices, accounts and bridge assignments are gone`,
        reset: { moveAside: homekitFiles.map((name) => `${HOMEKIT_DIR}/${name}`) },
      });
    }
    return problems;
  }
  const facts = readDatabase(dbPath, deep);
  if (typeof facts === 'string') {
    problems.push({ file: DATABASE_FILE, problem: facts, reset: { moveAside: [DATABASE_FILE] } });
    return problems;
  }
  problems.push(...bridgeFileProblems(homekitFiles, facts, DATABASE_FILE));
  return problems;
}

/** [D-4] HomeKit files against the bridges the store knows: a file of no known bridge, a published bridge without its files. */
function bridgeFileProblems(homekitFiles: string[], facts: DatabaseFacts, storeName: string): StateProblem[] {
  const problems: StateProblem[] = [];
  const known = new Set(facts.bridges.map((b) => b.id));
  for (const name of homekitFiles) {
    const id = HOMEKIT_FILE.exec(name)![2]!;
    if (!known.has(id)) {
      const file = `${HOMEKIT_DIR}/${name}`;
      problems.push({
        file,
        problem: `belongs to HomeKit bridge ${id}, which ${storeName} does not know (was ${storeName} replaced?)`,
        reset: { moveAside: [file] },
      });
    }
  }
  for (const bridge of facts.bridges) {
    if (!facts.published.has(bridge.id)) continue;
    for (const [kind, lost] of [
      ['AccessoryInfo', 'its keys and pairings'],
      ['IdentifierCache', 'its accessory ids (AIDs)'],
    ] as const) {
      const name = `${kind}.${bridge.id}.json`;
      if (!homekitFiles.includes(name)) {
        problems.push({
          file: `${HOMEKIT_DIR}/${name}`,
          problem: `is missing: HomeKit bridge ${bridge.index + 1} (${bridge.id}) was published, so ${lost} should be there`,
          reset: { moveAside: [], forgetBridge: bridge.id },
        });
      }
    }
  }
  return problems;
}

/** The message that refuses to start: each file with its problem, then the ways out. */
export function describeProblems(dataDir: string, problems: StateProblem[], refusing = 'start'): string {
  return [
    `the state in ${dataDir} is damaged; refusing to ${refusing}, so that nothing in it is overwritten:`,
    ...problems.map((p) => `  - ${p.file} ${p.problem}`),
    'Ways out:',
    `  - restore a backup: mqttkit restore <backup file> --data-dir ${dataDir} --force`,
    `  - or start over: mqttkit start --reset-state moves the damaged files aside (to <name>.damaged-<time>) and starts with what is left;`,
    '    a bridge that loses its keys gets new ones, and the Home app must pair with it again',
  ].join('\n');
}

/** Applies --reset-state: moves the problems' files aside (never deletes) and forgets lost bridges; returns what it did. */
export function resetState(dataDir: string, problems: StateProblem[], now = new Date()): string[] {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const done: string[] = [];
  const forget: string[] = [];
  for (const problem of problems) {
    for (const file of problem.reset.moveAside) {
      // SQLite's own side files belong to the database they sit beside.
      const group = file === DATABASE_FILE ? [file, `${file}-wal`, `${file}-shm`] : [file];
      for (const member of group) {
        const from = join(dataDir, member);
        if (!existsSync(from)) continue;
        const to = `${member}.damaged-${stamp}`;
        renameSync(from, join(dataDir, to));
        syncDirectory(join(from, '..'));
        done.push(`moved ${member} to ${to} (${problem.file} ${problem.problem})`);
      }
    }
    if (problem.reset.forgetBridge) forget.push(problem.reset.forgetBridge);
  }
  if (forget.length > 0) {
    const db = new Database(join(dataDir, DATABASE_FILE), { fileMustExist: true });
    try {
      db.pragma('synchronous = FULL');
      const unmark = db.prepare('DELETE FROM settings WHERE key = ?');
      for (const id of new Set(forget)) {
        unmark.run(PUBLISHED_SETTING_PREFIX + id);
        done.push(`HomeKit bridge ${id} lost its keys or ids: it gets new ones, and the Home app must pair with it again`);
      }
    } finally {
      db.close();
    }
  }
  return done;
}

/** Checks and, with `reset`, repairs until the state is consistent; throws DamagedStateError otherwise. */
/**
 * [D-3] [D-4] With the store in PostgreSQL: the data dir's HomeKit files against the bridges the database
 * knows, checked once it is open. Damage is refused by name (DamagedStateError); with `reset`, the
 * files are moved aside and a bridge that lost its files is forgotten as published, as on SQLite.
 */
export async function ensureBridgeFilesUsable(dataDir: string, store: StateStore, reset: boolean, report: (line: string) => void): Promise<void> {
  const facts = async (): Promise<DatabaseFacts> => {
    const bridges = (await store.bridges()).map((b) => ({ index: b.index, id: bridgeFileId(b.username) }));
    const published = new Set<string>();
    for (const b of bridges) if ((await store.getSetting(PUBLISHED_SETTING_PREFIX + b.id)) !== undefined) published.add(b.id);
    return { bridges, published };
  };
  const where = `the PostgreSQL database ${store.engine.where}`;
  const known = await facts();
  let problems = bridgeFileProblems(listHomeKitFiles(dataDir), known, where);
  if (problems.length === 0) return;
  // The likeliest cause: an install on SQLite started with --database-url before its store was copied over.
  if (known.bridges.length === 0 && existsSync(join(dataDir, DATABASE_FILE))) {
    throw new DamagedStateError(
      dataDir,
      problems.map((p) => ({
        ...p,
        problem: `${p.problem.replace(/ \(was .* replaced\?\)$/, '')}: ${where} is new, and this data dir's ${DATABASE_FILE} holds the hub's state; copy it there first: mqttkit migrate --from ${dataDir} --to <the database URL>`,
      })),
    );
  }
  if (!reset) throw new DamagedStateError(dataDir, problems);
  for (const line of resetState(
    dataDir,
    problems.map((p) => ({ ...p, reset: { moveAside: p.reset.moveAside } })),
  ))
    report(`--reset-state: ${line}`);
  for (const id of new Set(problems.flatMap((p) => (p.reset.forgetBridge ? [p.reset.forgetBridge] : [])))) {
    await store.engine.run('DELETE FROM settings WHERE key = ?', [PUBLISHED_SETTING_PREFIX + id]);
    report(`--reset-state: HomeKit bridge ${id} lost its keys or ids: it gets new ones, and the Home app must pair with it again`);
  }
  problems = bridgeFileProblems(listHomeKitFiles(dataDir), await facts(), where);
  if (problems.length > 0) throw new DamagedStateError(dataDir, problems);
}

export function ensureStateUsable(dataDir: string, reset: boolean, report: (line: string) => void, { external = false } = {}): void {
  // A reset can uncover more (a database moved aside leaves its bridges' keys without an owner).
  for (let round = 0; ; round++) {
    const problems = checkState(dataDir, { external });
    if (problems.length === 0) return;
    if (!reset || round === 3) throw new DamagedStateError(dataDir, problems);
    for (const line of resetState(dataDir, problems)) report(`--reset-state: ${line}`);
  }
}

function listHomeKitFiles(dataDir: string): string[] {
  const dir = join(dataDir, HOMEKIT_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => HOMEKIT_FILE.test(name))
    .sort();
}

/** The database's bridges and which were published, or what is wrong with it. */
function readDatabase(file: string, deep: boolean): DatabaseFacts | string {
  const problem = databaseFileProblem(file);
  if (problem) return problem;
  let db: Database.Database | undefined;
  try {
    // Opened read-write only to let SQLite remove the -wal/-shm files it creates when it closes (a
    // read-only connection leaves them behind); nothing is written. After a crash the -wal exists
    // already and may hold commits, so then read-only, to leave it as found.
    db = new Database(file, { readonly: existsSync(`${file}-wal`), fileMustExist: true });
    if (deep) {
      const result = db.pragma('quick_check', { simple: true });
      if (result !== 'ok') return `fails SQLite's integrity check (${String(result)})`;
    }
    const tables = new Set(
      db
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all()
        .map((r) => r.name),
    );
    if (!tables.has('bridges') || !tables.has('settings')) return { bridges: [], published: new Set() };
    const bridges = db.prepare<[], { idx: number; username: string }>('SELECT idx, username FROM bridges ORDER BY idx').all();
    const marks = db.prepare<[string], { key: string }>('SELECT key FROM settings WHERE key LIKE ?').all(`${PUBLISHED_SETTING_PREFIX}%`);
    return {
      bridges: bridges.map((b) => ({ index: b.idx, id: bridgeFileId(b.username) })),
      published: new Set(marks.map((m) => m.key.slice(PUBLISHED_SETTING_PREFIX.length))),
    };
  } catch (error) {
    return `cannot be read (${(error as Error).message})`;
  } finally {
    db?.close();
  }
}

const HEX = (length: number) => new RegExp(`^[0-9a-f]{${length}}$`, 'i');

/** What is wrong with a HomeKit storage file's content, or undefined. The checks are what HAP-NodeJS needs to load it. */
export function homeKitFileProblem(name: string, text: string): string | undefined {
  if (text.length === 0) return 'is empty (0 bytes)';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'is not valid JSON (cut short?)';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'does not hold a JSON object';
  const record = value as Record<string, unknown>;
  if (name.startsWith('AccessoryInfo.')) {
    if (typeof record.signSk !== 'string' || !HEX(128).test(record.signSk)) return "lacks the bridge's secret key (signSk)";
    if (typeof record.signPk !== 'string' || !HEX(64).test(record.signPk)) return "lacks the bridge's public key (signPk)";
    const paired = record.pairedClients ?? {};
    if (typeof paired !== 'object' || paired === null || Object.values(paired).some((key) => typeof key !== 'string' || !HEX(64).test(key))) {
      return 'holds unreadable pairings (pairedClients)';
    }
  }
  if (name.startsWith('IdentifierCache.')) {
    const cache = record.cache;
    if (typeof cache !== 'object' || cache === null || Object.values(cache).some((id) => typeof id !== 'number')) return 'lacks its id table (cache)';
  }
  return undefined;
}

function credentialsProblem(text: string): string | undefined {
  if (text.length === 0) return 'is empty (0 bytes)';
  const parsed = parseJson(text, credentialsSchema);
  if (parsed.ok) return undefined;
  return parsed.error.startsWith('not valid JSON') ? 'is not valid JSON (cut short?)' : `lacks the username or password (${parsed.error})`;
}
