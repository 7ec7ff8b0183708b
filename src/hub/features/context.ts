/** What the hub hands every feature module: the core, the store, and the options. */
import type { EventBus } from '../../core/events.js';
import type { DeviceRegistry } from '../../core/registry.js';
import type { HapCatalog } from '../../homekit/catalog.js';
import type { AccountStore } from '../../store/account-store.js';
import type { SqlEngine } from '../../store/engine/sql-engine.js';
import type { EspNowPairings } from '../../store/espnow-pairings.js';
import type { HistoryStore } from '../../store/history-store.js';
import type { OtaStore } from '../../store/ota-store.js';
import type { StateStore } from '../../store/state-store.js';
import type { Faults } from '../faults.js';
import type { HubOptions } from '../hub.js';

export interface HubContext {
  readonly options: HubOptions;
  readonly db: SqlEngine;
  readonly bus: EventBus;
  readonly registry: DeviceRegistry;
  readonly catalog: HapCatalog;
  readonly store: StateStore;
  readonly accounts: AccountStore;
  readonly ota: OtaStore;
  readonly history: HistoryStore;
  /** ESP-NOW pairings: which gateway speaks for which peripheral (issue 16). */
  readonly espnow: EspNowPairings;
  readonly faults: Faults;
  readonly pincode: string;
  /** Batch writers call this after a commit: the WAL checkpoint thread takes it from there. */
  readonly wrote: () => void;
}
