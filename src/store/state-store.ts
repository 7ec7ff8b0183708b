/**
 * Persistence behind a small interface, so nothing else writes SQL: devices, settings, and which
 * HomeKit bridge each device lives on.
 */
import type { DeviceRecord } from '../core/device.js';
import { parseDeviceRecord } from '../core/device-record.js';
import { durably, type SqlEngine } from './engine/sql-engine.js';

export interface BridgeIdentity {
  index: number;
  /** HAP "username": the bridge's MAC-like id, fixed for its lifetime. */
  username: string;
}

/** Settings key that records that a bridge was published, so its HomeKit keys exist and must not vanish. */
export const PUBLISHED_SETTING_PREFIX = 'homekit.published.';

/** HAP-NodeJS names a bridge's files by its username without colons: `AccessoryInfo.0E5A3C9F1B22.json`. */
export const bridgeFileId = (username: string) => username.replace(/:/g, '').toUpperCase();

/** [P-27] Settings key: the discovery prefixes that may still hold Home Assistant configs of ours. */
export const HA_DISCOVERY_SETTING = 'homeassistant.discovery.prefixes';
/** A prefix as `--ha-discovery-prefix` allows it; a record holds a few (a sweep that did not finish keeps the old one). */
const HA_PREFIX = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_HA_PREFIXES = 8;
/**
 * [P-27] Settings keys: the discovery config topics the hub has published per device (`…configs.<device id>`),
 * and those of ours nothing wants any more that Home Assistant has not yet been seen to take (`…leftovers`).
 * The embedded broker forgets retained configs at a restart; this record does not.
 */
export const HA_CONFIGS_SETTING_PREFIX = 'homeassistant.discovery.configs.';
export const HA_LEFTOVERS_SETTING = 'homeassistant.discovery.leftovers';
/** Only a discovery config topic is ever cleared from the record: `<prefix>/<component>/<node>/<object>/config`. */
const HA_CONFIG_TOPIC = /^[A-Za-z0-9_-]{1,64}\/[a-z_]{1,32}\/[A-Za-z0-9_-]{1,64}\/[A-Za-z0-9_-]{1,160}\/config$/;
/** A device's configs are one per service or characteristic: a few dozen; the leftovers as many as the sweep looks at. */
export const MAX_HA_CONFIGS_PER_DEVICE = 1000;
export const MAX_HA_LEFTOVERS = 10_000;

export interface HaDiscoveryRecord {
  /** Device id → the config topics published for it. */
  configs: Map<string, string[]>;
  /** Config topics of ours that nothing wants now, cleared but not yet known to have reached Home Assistant. */
  leftovers: string[];
}

/** A recorded list of config topics, or undefined when it is not one. */
function configTopics(text: string, max: number): string[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return Array.isArray(value) && value.length <= max && value.every((t) => typeof t === 'string' && HA_CONFIG_TOPIC.test(t)) ? (value as string[]) : undefined;
}

const UPSERT_DEVICE =
  'INSERT INTO devices (id, doc, updated_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at';

export class StateStore {
  constructor(readonly engine: SqlEngine) {}

  /** Saved devices; a row that is not JSON is skipped (and named to `onDamaged`), never fatal, never changed. */
  async loadDevices(onDamaged?: (id: string, problem: string) => void): Promise<DeviceRecord[]> {
    const devices: DeviceRecord[] = [];
    for (const row of await this.engine.all<{ id: string; doc: string }>('SELECT id, doc FROM devices ORDER BY id')) {
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

  async saveDevices(devices: Iterable<DeviceRecord>): Promise<void> {
    const now = Date.now();
    // Serialised before the transaction: the records as they are now, whatever happens while it waits.
    const rows = [...devices].map((device) => [device.id, JSON.stringify(device), now] as const);
    await this.engine.transaction(async (tx) => {
      for (const row of rows) await tx.run(UPSERT_DEVICE, row);
    });
  }

  async deleteDevice(id: string): Promise<void> {
    await this.engine.transaction(async (tx) => {
      await tx.run('DELETE FROM devices WHERE id = ?', [id]);
      await tx.run('DELETE FROM bridge_members WHERE device_id = ?', [id]);
    });
  }

  async getSetting(key: string): Promise<string | undefined> {
    return (await this.engine.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key]))?.value;
  }

  /** Settings are few and rarely written (setup code, marks, a heartbeat a minute): each is on disk when this resolves. */
  async setSetting(key: string, value: string): Promise<void> {
    await durably(this.engine, 'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  /**
   * [P-27] The discovery prefixes under which configs of ours may still be retained ([] when none; the
   * hub never ran discovery, or cleared them all). A damaged record is named and reads as none.
   */
  async haDiscoveryPrefixes(onDamaged?: (problem: string) => void): Promise<string[]> {
    const text = await this.getSetting(HA_DISCOVERY_SETTING);
    if (text === undefined) return [];
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (!Array.isArray(value) || value.length > MAX_HA_PREFIXES || !value.every((p) => typeof p === 'string' && HA_PREFIX.test(p))) {
      onDamaged?.(`the setting ${HA_DISCOVERY_SETTING} is not a list of discovery prefixes (${text.slice(0, 100)})`);
      return [];
    }
    return value as string[];
  }

  async setHaDiscoveryPrefixes(prefixes: readonly string[]): Promise<void> {
    const kept = [...new Set(prefixes)].filter((p) => HA_PREFIX.test(p)).slice(-MAX_HA_PREFIXES);
    await this.setSetting(HA_DISCOVERY_SETTING, JSON.stringify(kept));
  }

  /**
   * [P-27] The discovery configs the hub has published, per device, and its uncleared leftovers. Each key
   * is read on its own: a damaged one is named to `onDamaged` and reads as empty; the others still count.
   */
  async haDiscoveryRecord(onDamaged?: (problem: string) => void): Promise<HaDiscoveryRecord> {
    const record: HaDiscoveryRecord = { configs: new Map(), leftovers: [] };
    const rows = await this.engine.all<{ key: string; value: string }>('SELECT key, value FROM settings WHERE key LIKE ? OR key = ? ORDER BY key', [
      `${HA_CONFIGS_SETTING_PREFIX}%`,
      HA_LEFTOVERS_SETTING,
    ]);
    for (const { key, value } of rows) {
      const leftovers = key === HA_LEFTOVERS_SETTING;
      const topics = configTopics(value, leftovers ? MAX_HA_LEFTOVERS : MAX_HA_CONFIGS_PER_DEVICE);
      if (topics === undefined) onDamaged?.(`the setting ${key} is not a list of discovery config topics (${value.slice(0, 100)})`);
      else if (leftovers) record.leftovers = topics;
      else record.configs.set(key.slice(HA_CONFIGS_SETTING_PREFIX.length), topics);
    }
    return record;
  }

  /**
   * [P-27] Changes to the record in one transaction: a device's topics (an empty list forgets the device),
   * and the leftovers when given. Topics that are not discovery config topics are not recorded; a list
   * past its bound keeps its last entries.
   */
  async saveHaDiscoveryRecord(change: { configs?: ReadonlyMap<string, readonly string[]>; leftovers?: readonly string[] }): Promise<void> {
    const kept = (topics: readonly string[], max: number) => [...new Set(topics)].filter((t) => HA_CONFIG_TOPIC.test(t)).slice(-max);
    const writes: Array<[string, string[]]> = [...(change.configs ?? [])].map(([id, topics]) => [
      HA_CONFIGS_SETTING_PREFIX + id,
      kept(topics, MAX_HA_CONFIGS_PER_DEVICE),
    ]);
    if (change.leftovers) writes.push([HA_LEFTOVERS_SETTING, kept(change.leftovers, MAX_HA_LEFTOVERS)]);
    if (writes.length === 0) return;
    await this.engine.transaction(
      async (tx) => {
        for (const [key, topics] of writes) {
          if (topics.length === 0) await tx.run('DELETE FROM settings WHERE key = ?', [key]);
          else
            await tx.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', [
              key,
              JSON.stringify(topics),
            ]);
        }
      },
      { durable: true },
    );
  }

  async bridges(): Promise<BridgeIdentity[]> {
    const rows = await this.engine.all<{ idx: number; username: string }>('SELECT idx, username FROM bridges ORDER BY idx');
    return rows.map((row) => ({ index: row.idx, username: row.username }));
  }

  /** [D-4] On disk before HAP-NodeJS writes the bridge's keys, so no key file is ever without its bridge. */
  async addBridge(bridge: BridgeIdentity): Promise<void> {
    await durably(this.engine, 'INSERT INTO bridges (idx, username, created_at) VALUES (?, ?, ?)', [bridge.index, bridge.username, Date.now()]);
  }

  /** [D-4] Records that a bridge's keys and ids are on disk (after its first publish). */
  async markBridgePublished(username: string): Promise<void> {
    const key = PUBLISHED_SETTING_PREFIX + bridgeFileId(username);
    if ((await this.getSetting(key)) === undefined) await this.setSetting(key, new Date().toISOString());
  }

  async bridgeMembers(): Promise<Map<string, number>> {
    const rows = await this.engine.all<{ device_id: string; bridge: number }>('SELECT device_id, bridge FROM bridge_members');
    return new Map(rows.map((row) => [row.device_id, row.bridge]));
  }

  /** Which bridge a device lives on decides its AID: kept durably. */
  async assignBridge(deviceId: string, bridge: number): Promise<void> {
    await durably(this.engine, 'INSERT INTO bridge_members (device_id, bridge) VALUES (?, ?) ON CONFLICT(device_id) DO UPDATE SET bridge = excluded.bridge', [
      deviceId,
      bridge,
    ]);
  }
}
