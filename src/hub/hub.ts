/**
 * Wires the core (registry, event bus) to its features (MQTT I/O, HomeKit, persistence) and starts
 * and stops them in order. Nothing here knows a protocol detail.
 */
import { chmodSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceTopics } from '../broker/device-topics.js';
import { EmbeddedBroker, type TlsListenerOptions } from '../broker/embedded-broker.js';
import { connectExternal } from '../broker/external-link.js';
import type { HubLink } from '../broker/hub-link.js';
import { EventBus } from '../core/events.js';
import { DeviceRegistry } from '../core/registry.js';
import { HapCatalog } from '../homekit/catalog.js';
import { HomeKitBridges, type BridgeStatus } from '../homekit/homekit-bridges.js';
import { generatePincode } from '../homekit/pincode.js';
import type { Logger } from '../log/logger.js';
import { RegistryPersistence } from '../store/registry-persistence.js';
import { removeHubToken, removeRuntime, runningHubPid, writeHubToken, writeRuntime } from '../store/runtime-file.js';
import { StateStore } from '../store/state-store.js';
import { ensureStateUsable } from '../store/state-check.js';
import { removeStaleTempFiles } from '../store/atomic-file.js';
import { HistoryStore } from '../store/history-store.js';
import { HistoryRecorder } from '../store/history-recorder.js';
import { WebStore } from '../store/web-store.js';
import { WebServer } from '../web/server.js';
import { OtaStore } from '../store/ota-store.js';
import { DeviceChannel } from '../ota/device-channel.js';
import { OtaService } from '../ota/ota-service.js';
import { AccountStore } from '../store/account-store.js';
import { removeLeftoverCheckerAccounts } from '../conformance/checker-account.js';
import { DATABASE_FILE, openDatabase } from '../store/database.js';
import { DEFAULT_THROTTLE } from '../security/auth-throttle.js';
import { LoginThrottle } from '../security/login-throttle.js';
import { Registration, type RegistrationPolicy } from '../security/registration.js';
import { logActivity } from './activity-log.js';
import { DeviceExpiry } from './device-expiry.js';
import { Faults } from './faults.js';
import { installTestFaults } from './test-faults.js';
import { uploadsRoot } from '../ota/uploads.js';
import { VERSION } from './version.js';

export type MqttOptions =
  | { kind: 'embedded'; host: string; port: number; registration: RegistrationPolicy; authMaxDelayMs: number; tls?: TlsListenerOptions | undefined }
  | { kind: 'external'; url: string; username?: string | undefined; password?: string | undefined };

export interface HubOptions {
  dataDir: string;
  mqtt: MqttOptions;
  hapPort: number;
  hapHost?: string | undefined;
  /** The dashboard and API; -1 turns them off. */
  httpPort: number;
  httpHost: string;
  /** More Host names the dashboard answers to (docs/api.md ). */
  httpAllowedHosts?: readonly string[] | undefined;
  /** The largest OTA file, in bytes (docs/api.md ). */
  otaMaxFileSize?: number | undefined;
  historyRetentionMs: number;
  /** Overrides (and replaces) the stored setup code; one is generated on first start otherwise. */
  pincode?: string | undefined;
  bridgeName: string;
  deviceTtlMs: number;
  writeTimeoutMs: number;
  /** How long an OTA job waits for a rebooting device to come back. */
  otaRebootTimeoutMs: number;
  /** [O-14] How long after its start an OTA job still waits for a device that dropped mid-job (default 30 min). */
  otaJobDeadlineMs?: number | undefined;
  /** The hub's address for devices' OTA downloads when the broker cannot tell it (external broker). */
  otaHost?: string | undefined;
  /** `--reset-state`: move damaged state files aside and start with what is left, instead of refusing. */
  resetState?: boolean | undefined;
}

export const PINCODE_SETTING = 'homekit.pincode';

export class Hub {
  readonly #stops: Array<() => void | Promise<void>> = [];

  private constructor(
    readonly options: HubOptions,
    readonly registry: DeviceRegistry,
    readonly bus: EventBus,
    readonly pincode: string,
    readonly mqttAddress: string,
    private readonly homekit: HomeKitBridges,
    readonly webPort: number | undefined,
  ) {}

  /** `faults` counts what the hub survived (the start command also feeds it process-level faults). */
  static async start(options: HubOptions, log: Logger, faults = new Faults(log)): Promise<Hub> {
    const running = runningHubPid(options.dataDir);
    if (running) throw new Error(`a hub is already running on ${options.dataDir} (pid ${running}): stop it first or use another --data-dir`);
    // [D-3] Before anything is created or opened: a damaged store is refused by name, never replaced.
    ensureStateUsable(options.dataDir, options.resetState === true, (line) => log.warn(line));
    mkdirSync(join(options.dataDir, 'homekit'), { recursive: true, mode: 0o700 });
    // The data dir holds HomeKit keys: owner-only, whatever the umask.
    chmodSync(options.dataDir, 0o700);
    const homekitDir = join(options.dataDir, 'homekit');
    chmodSync(homekitDir, 0o700);
    for (const file of readdirSync(homekitDir)) chmodSync(join(homekitDir, file), 0o600);
    for (const dir of [options.dataDir, homekitDir]) for (const name of removeStaleTempFiles(dir)) log.info(`removed ${name}, left by an interrupted write`);

    const stops: Array<() => void | Promise<void>> = [];
    const undo = async () => {
      for (const stop of stops.reverse()) await stop();
    };
    try {
      const db = openDatabase(join(options.dataDir, DATABASE_FILE));
      stops.push(() => void db.close());
      const store = new StateStore(db);
      const accounts = new AccountStore(db);
      // A conformance run killed outright left its temporary admin account: it must not stay a standing login.
      for (const name of removeLeftoverCheckerAccounts(accounts)) log.warn(`removed the admin account ${name}, left by an interrupted 'mqttkit conformance'`);
      const pincode = options.pincode ?? store.getSetting(PINCODE_SETTING) ?? generatePincode();
      store.setSetting(PINCODE_SETTING, pincode);

      const bus = new EventBus((event, error) => faults.record('listenerErrors', error, { event }));
      stops.push(installTestFaults(bus));
      const catalog = new HapCatalog();
      const registry = new DeviceRegistry(bus, catalog, { writeTimeoutMs: options.writeTimeoutMs });
      // One device's data never stops the hub: records it cannot use are held aside, named, kept as they are.
      const damaged: Array<{ id: string; problem: string }> = [];
      const restored = registry.restore(store.loadDevices((id, problem) => damaged.push({ id, problem })), { noneConnected: options.mqtt.kind === 'embedded' });
      for (const { id, problem } of damaged) registry.hold(id, problem);
      for (const { id, problem } of [...damaged, ...restored.held]) {
        log.error({ device: id, problem }, `device ${id} left out: its stored record cannot be used (${problem}); kept untouched: remove it (mqttkit device remove ${id}) to start it afresh`);
      }
      stops.push(() => registry.close());
      stops.push(logActivity(bus, log));

      const persistence = new RegistryPersistence(bus, registry, store);
      persistence.start();
      stops.push(() => persistence.stop());

      const homekit = new HomeKitBridges(bus, registry, store, catalog, log.child({ part: 'homekit' }), {
        storagePath: join(options.dataDir, 'homekit'),
        port: options.hapPort,
        host: options.hapHost,
        pincode,
        bridgeName: options.bridgeName,
        version: VERSION,
      });
      stops.push(() => homekit.stop());
      await homekit.start();

      let link: HubLink;
      let broker: EmbeddedBroker | undefined;
      if (options.mqtt.kind === 'embedded') {
        const brokerLog = log.child({ part: 'broker' });
        const throttle = new LoginThrottle({ ...DEFAULT_THROTTLE, maxDelayMs: options.mqtt.authMaxDelayMs });
        const registration = new Registration(accounts, options.mqtt.registration, brokerLog, throttle);
        broker = await EmbeddedBroker.start(
          { host: options.mqtt.host, port: options.mqtt.port, registration, tls: options.mqtt.tls, onDeviceGone: (id) => registry.connectionClosed(id) },
          brokerLog,
        );
        const started = broker;
        stops.push(() => started.close());
        link = broker.link();
      } else {
        link = await connectExternal(options.mqtt, log.child({ part: 'mqtt' }));
      }
      stops.push(() => link.close());
      const topics = new DeviceTopics(link, registry, bus, log.child({ part: 'mqtt' }));
      const counters = () => ({ ...topics.counters });
      await topics.start();
      stops.push(() => topics.stop());

      // A damaged job, rollout or device_info row is named in the log; the store ends it as failed. [D-3]
      const otaStore = new OtaStore(db, (where, problem) => log.error({ where }, problem));
      const channel = new DeviceChannel(link, otaStore, log.child({ part: 'ota' }));
      await channel.start();
      const started = broker;
      const ota = new OtaService(link, channel, otaStore, registry, bus, log.child({ part: 'ota' }), (id) => started?.route(id), {
        transferTimeoutMs: 60_000,
        rebootTimeoutMs: options.otaRebootTimeoutMs,
        commandTimeoutMs: 15_000,
        jobDeadlineMs: options.otaJobDeadlineMs ?? 30 * 60_000,
        hubAddress: options.otaHost,
        uploadsRoot: uploadsRoot(options.dataDir),
        listening: broker?.listening,
      });
      ota.start();
      stops.push(() => ota.stop());

      const history = new HistoryStore(db);
      const recorder = new HistoryRecorder(bus, history, options.historyRetentionMs);
      recorder.start();
      stops.push(() => recorder.stop());

      let webPort: number | undefined;
      if (options.httpPort !== -1) {
        const web = new WebServer({
          registry,
          bus,
          ota: otaStore,
          history,
          accounts,
          web: new WebStore(db),
          channel,
          bridges: () => homekit.bridges(),
          pincode,
          policy: options.mqtt.kind === 'embedded' ? options.mqtt.registration : 'closed',
          dataDir: options.dataDir,
          log: log.child({ part: 'web' }),
          counters,
          allowedHosts: options.httpAllowedHosts,
          otaMaxFileSize: options.otaMaxFileSize,
          faults: () => faults.snapshot(),
          cancelJob: (id, by) => ota.cancel(id, by),
          cancelRollout: (id, by) => ota.cancelRollout(id, by),
          disconnect: (id) => broker?.disconnect(id),
          removeDevice: (id, reason = 'removed from the dashboard') => {
            accounts.remove(id);
            registry.remove(id, reason);
            broker?.disconnect(id);
          },
          // The CLI's way in: a new token each start, owner-only beside hub.json, removed at stop.
          localToken: writeHubToken(options.dataDir),
        });
        stops.push(() => removeHubToken(options.dataDir));
        webPort = await web.start(options.httpHost, options.httpPort);
        stops.push(() => web.stop());
      }

      // [P-20] Devices silent past their announced keepalive go offline (checked every second).
      const presence = setInterval(() => registry.checkPresence(), 1000);
      presence.unref();
      stops.push(() => clearInterval(presence));

      const expiry = new DeviceExpiry(registry, store, options.deviceTtlMs, log);
      expiry.start();
      stops.push(() => expiry.stop());

      const hub = new Hub(options, registry, bus, pincode, link.address, homekit, webPort);
      hub.#stops.push(...stops);
      const mqtt = broker ? { address: link.address, embedded: true, host: broker.host, port: broker.port, tlsPort: broker.tlsPort } : { address: link.address, embedded: false };
      const startedAt = new Date().toISOString();
      const saveRuntime = () =>
        writeRuntime(options.dataDir, {
          pid: process.pid,
          startedAt,
          mqtt,
          bridges: hub.bridges().map(({ index, name, port, username, setupURI }) => ({ index, name, port, username, setupURI })),
          httpPort: webPort,
          httpHost: webPort === undefined ? undefined : options.httpHost,
        });
      // [D-4] A published bridge has keys and ids on disk; from now on their loss is damage.
      const markPublished = () => {
        for (const bridge of hub.bridges()) if (bridge.port !== undefined) store.markBridgePublished(bridge.username);
      };
      markPublished();
      saveRuntime();
      // A new bridge (past 149 devices) opens while running; keep the file current.
      homekit.onPublished = () => {
        markPublished();
        saveRuntime();
      };
      return hub;
    } catch (error) {
      await undo();
      throw error;
    }
  }

  bridges(): BridgeStatus[] {
    return this.homekit.bridges();
  }

  async stop(): Promise<void> {
    for (const stop of this.#stops.splice(0).reverse()) await stop();
    removeRuntime(this.options.dataDir);
  }
}
