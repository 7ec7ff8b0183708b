/**
 * Persistence behind a small interface, so nothing else writes SQL: devices, settings, and which
 * HomeKit bridge each device lives on.
 */
import type { DeviceRecord } from '../core/device.js';
import { parseDeviceRecord } from '../core/device-record.js';
import { type Db, durably } from './database.js';

export interface BridgeIdentity {
  index: number;
  /** HAP "username": the bridge's MAC-like id, fixed for its lifetime. */
  username: string;
}

/** Settings key that records that a bridge was published, so its HomeKit keys exist and must not vanish. */
export const PUBLISHED_SETTING_PREFIX = 'homekit.published.';

/** HAP-NodeJS names a bridge's files by its username without colons: `AccessoryInfo.0E5A3C9F1B22.json`. */
export const bridgeFileId = (username: string) => username.replace(/:/g, '').toUpperCase();

export class StateStore {
  readonly #db: Db;
  readonly #statements;

  constructor(db: Db) {
    this.#db = db;
    this.#statements = {
      devices: db.prepare<[], { id: string; doc: string }>('SELECT id, doc FROM devices ORDER BY id'),
      upsertDevice: db.prepare(
        'INSERT INTO devices (id, doc, updated_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at',
      ),
      deleteDevice: db.prepare('DELETE FROM devices WHERE id = ?'),
      getSetting: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?'),
      setSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      bridges: db.prepare<[], { idx: number; username: string }>('SELECT idx, username FROM bridges ORDER BY idx'),
      addBridge: db.prepare('INSERT INTO bridges (idx, username, created_at) VALUES (?, ?, ?)'),
      members: db.prepare<[], { device_id: string; bridge: number }>('SELECT device_id, bridge FROM bridge_members'),
      assign: db.prepare('INSERT INTO bridge_members (device_id, bridge) VALUES (?, ?) ON CONFLICT(device_id) DO UPDATE SET bridge = excluded.bridge'),
      unassign: db.prepare('DELETE FROM bridge_members WHERE device_id = ?'),
    };
  }

  /** Saved devices; a row that is not JSON is skipped (and named to `onDamaged`), never fatal, never changed. */
  loadDevices(onDamaged?: (id: string, problem: string) => void): DeviceRecord[] {
    const devices: DeviceRecord[] = [];
    for (const row of this.#statements.devices.all()) {
      let value: unknown;
      try {
        value = JSON.parse(row.doc);
      } catch (error) {
        onDamaged?.(row.id, `its saved record is not JSON (${(error as Error).message.slice(0, 100)})`);
        continue;
      }
      const record = parseDeviceRecord(value);
      if (record.ok) devices.push(record.value);
      else onDamaged?.(row.id, record.error);
    }
    return devices;
  }

  saveDevices(devices: Iterable<DeviceRecord>): void {
    const now = Date.now();
    this.#db.transaction(() => {
      for (const device of devices) this.#statements.upsertDevice.run(device.id, JSON.stringify(device), now);
    })();
  }

  deleteDevice(id: string): void {
    this.#db.transaction(() => {
      this.#statements.deleteDevice.run(id);
      this.#statements.unassign.run(id);
    })();
  }

  getSetting(key: string): string | undefined {
    return this.#statements.getSetting.get(key)?.value;
  }

  /** Settings are few and rarely written (setup code, marks, a heartbeat a minute): each is on disk when this returns. */
  setSetting(key: string, value: string): void {
    durably(this.#db, () => this.#statements.setSetting.run(key, value));
  }

  bridges(): BridgeIdentity[] {
    return this.#statements.bridges.all().map((row) => ({ index: row.idx, username: row.username }));
  }

  /** [D-4] On disk before HAP-NodeJS writes the bridge's keys, so no key file is ever without its bridge. */
  addBridge(bridge: BridgeIdentity): void {
    durably(this.#db, () => this.#statements.addBridge.run(bridge.index, bridge.username, Date.now()));
  }

  /** [D-4] Records that a bridge's keys and ids are on disk (after its first publish). */
  markBridgePublished(username: string): void {
    const key = PUBLISHED_SETTING_PREFIX + bridgeFileId(username);
    if (this.getSetting(key) === undefined) this.setSetting(key, new Date().toISOString());
  }

  bridgeMembers(): Map<string, number> {
    return new Map(this.#statements.members.all().map((row) => [row.device_id, row.bridge]));
  }

  /** Which bridge a device lives on decides its AID: kept durably. */
  assignBridge(deviceId: string, bridge: number): void {
    durably(this.#db, () => this.#statements.assign.run(deviceId, bridge));
  }
}
