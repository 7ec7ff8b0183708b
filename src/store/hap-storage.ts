/**
 * HAP-NodeJS's storage (bridge keys and pairings in `AccessoryInfo.<MAC>.json`, HomeKit ids in
 * `IdentifierCache.<MAC>.json`), written crash-safely. HAP-NodeJS stores through node-persist 0.0.12,
 * whose `setItemSync` is a plain `writeFileSync`: a crash mid-write leaves a truncated file, which
 * node-persist then reads as "nothing saved", so the bridge starts over with new keys and ids. This
 * adapter implements the part of node-persist's API HAP-NodeJS calls (`getItem`, `setItemSync`,
 * `removeItemSync`, `persistSync`) with the same file names and JSON, so existing data dirs keep
 * working, but writes atomically and refuses a damaged file instead of forgetting it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HAPStorage } from 'hap-nodejs';
import { removeFileDurably, writeFileAtomic } from './atomic-file.js';

/** The keys HAP-NodeJS uses are file names like `AccessoryInfo.0E5A3C9F1B22.json`. */
const KEY = /^[A-Za-z]+\.[0-9A-F]{12}\.json$/;

export class DamagedFileError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file} ${problem}`);
  }
}

export class HapFileStorage {
  constructor(readonly dir: string) {}

  /** The saved value, undefined when none was saved; throws when the file exists but is damaged. */
  getItem(key: string): unknown {
    const file = this.#file(key);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const value: unknown = JSON.parse(text);
      return value;
    } catch {
      // node-persist would return undefined here, and HAP-NodeJS would make new keys: never.
      throw new DamagedFileError(
        file,
        `is damaged (${text.length === 0 ? 'empty' : 'not valid JSON'}): refusing to replace HomeKit keys or ids; see 'mqttkit start --help' (--reset-state)`,
      );
    }
  }

  setItemSync(key: string, value: unknown): void {
    writeFileAtomic(this.#file(key), JSON.stringify(value));
  }

  removeItemSync(key: string): void {
    removeFileDurably(this.#file(key));
  }

  /** node-persist batches writes in memory; every write here is on disk already. */
  persistSync(): void {}

  #file(key: string): string {
    if (!KEY.test(key)) throw new Error(`unexpected HomeKit storage key ${JSON.stringify(key)}`);
    return join(this.dir, key);
  }
}

/**
 * Makes HAP-NodeJS store in `dir` through HapFileStorage. HAPStorage has no public way to supply a
 * storage object, only a path for node-persist; its singleton's `localStore` field is what every
 * `HAPStorage.storage()` call returns, so that is where ours goes (checked against hap-nodejs 1.2).
 */
export function useHapFileStorage(dir: string, create: (dir: string) => HapFileStorage = (d) => new HapFileStorage(d)): HapFileStorage {
  const singleton = (HAPStorage as unknown as { INSTANCE?: { localStore?: unknown } }).INSTANCE;
  if (!singleton || typeof HAPStorage.storage !== 'function')
    throw new Error('this hap-nodejs version keeps its storage elsewhere: mqttkit cannot store HomeKit keys safely');
  const current = singleton.localStore;
  if (current instanceof HapFileStorage && current.dir === dir) return current;
  if (current !== undefined && !(current instanceof HapFileStorage))
    throw new Error('HomeKit storage was opened before mqttkit could install its crash-safe storage');
  const storage = create(dir);
  singleton.localStore = storage;
  return storage;
}
