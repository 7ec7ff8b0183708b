/**
 * Wires the core (registry, event bus) to its features (MQTT I/O, HomeKit, persistence) and starts
 * and stops them in order. Nothing here knows a protocol detail.
 */
import { chmodSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TlsListenerOptions } from '../broker/embedded-broker.js';
import { isCheckerAccountName, removeLeftoverCheckerAccounts } from '../conformance/checker-account.js';
import { EventBus } from '../core/events.js';
import { DeviceRegistry } from '../core/registry.js';
import { HapCatalog } from '../homekit/catalog.js';
import '../homekit/plain-stack-traces.js';
import { mosquittoPeripheralRights } from '../broker/mosquitto/espnow-acls.js';
import { HUB_ROLE } from '../broker/mosquitto/mosquitto-config.js';
import type { BridgeStatus } from '../homekit/homekit-bridges.js';
import { generatePincode } from '../homekit/pincode.js';
import type { Logger } from '../log/logger.js';
import type { RegistrationPolicy } from '../security/registration.js';
import { AccountStore } from '../store/account-store.js';
import { removeStaleTempFiles } from '../store/atomic-file.js';
import { readBrokerCredentials } from '../store/broker-credentials.js';
import { openEngine } from '../store/engine/open.js';
import { SqliteEngine } from '../store/engine/sqlite-engine.js';
import { EspNowPairings } from '../store/espnow-pairings.js';
import { HistoryStore } from '../store/history-store.js';
import { OtaStore } from '../store/ota-store.js';
import { removeRuntime, runningHubPid, writeRuntime } from '../store/runtime-file.js';
import { ensureBridgeFilesUsable, ensureStateUsable } from '../store/state-check.js';
import { StateStore } from '../store/state-store.js';
import { WalCheckpointer } from '../store/wal-checkpointer.js';
import { WebStore } from '../store/web-store.js';
import { HttpError } from '../web/http-error.js';
import type { DashboardTlsOption } from '../web/tls.js';
import { Faults } from './faults.js';
import { FeatureRunner } from './feature.js';
import { ActivityFeature } from './features/activity.js';
import { CommandsFeature } from './features/commands.js';
import type { HubContext } from './features/context.js';
import { HaDiscoveryFeature } from './features/ha-discovery.js';
import { HistoryFeature } from './features/history.js';
import { HomeKitFeature } from './features/homekit.js';
import { MatterFeature } from './features/matter.js';
import { MqttFeature } from './features/mqtt.js';
import { OTA_OFF_MESSAGE, OtaFeature } from './features/ota.js';
import { PersistenceFeature } from './features/persistence.js';
import { PresenceFeature } from './features/presence.js';
import { WebFeature } from './features/web.js';
import { ExclusiveLock } from './leadership.js';
import { installTestFaults } from './test-faults.js';

export type MqttOptions =
  | { kind: 'embedded'; host: string; port: number; registration: RegistrationPolicy; authMaxDelayMs: number; tls?: TlsListenerOptions | undefined }
  | { kind: 'external'; url: string; username?: string | undefined; password?: string | undefined };

export interface HubOptions {
  dataDir: string;
  /** `postgres://…` (--database-url): the store lives in PostgreSQL instead of `<dataDir>/mqttkit.db`. */
  databaseUrl?: string | undefined;
  mqtt: MqttOptions;
  hapPort: number;
  hapHost?: string | undefined;
  /** The dashboard and API; -1 turns them off. */
  httpPort: number;
  httpHost: string;
  /** More Host names the dashboard answers to (docs/api.md ). */
  httpAllowedHosts?: readonly string[] | undefined;
  /** HTTPS for the dashboard (docs/api.md ): the owner's certificate files, or a self-signed one in the data dir. */
  httpTls?: DashboardTlsOption | undefined;
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
  /** Features that can be switched off (`--no-homekit`, `--no-ota`, `--no-history`); on unless false. */
  homekit?: boolean | undefined;
  ota?: boolean | undefined;
  history?: boolean | undefined;
  /** [H-3] Set when this hub runs beside a standby on a shared PostgreSQL (and holds the active role). */
  cluster?: { instanceUrl: string } | undefined;
  /** `--ha-discovery`: Home Assistant discovery configs under this prefix ([P-26]); off when undefined. */
  haDiscovery?: { prefix: string } | undefined;
  /** `--matter`: a Matter bridge on this UDP port (0: a free one) (docs/matter.md); off when undefined. */
  matter?: { port: number } | undefined;
  /** `--reset-state`: move damaged state files aside and start with what is left, instead of refusing. */
  resetState?: boolean | undefined;
}

export const PINCODE_SETTING = 'homekit.pincode';

export class Hub {
  readonly #stops: Array<() => void | Promise<void>> = [];
  #needsAdmin: () => Promise<boolean> = async () => false;
  /** The dashboard's certificate when it serves HTTPS (`--http-tls …`): the banner prints its fingerprint. */
  webTls: { certFile: string; fingerprint256: string; generated: boolean } | undefined;

  private constructor(
    readonly options: HubOptions,
    readonly registry: DeviceRegistry,
    readonly bus: EventBus,
    readonly pincode: string,
    readonly mqttAddress: string,
    private readonly homekit: HomeKitFeature,
    readonly webPort: number | undefined,
    /** `--matter`: the bridge's status (pairing codes, fabrics) for the banner. */
    readonly matter?: MatterFeature | undefined,
  ) {}

  /** `faults` counts what the hub survived (the start command also feeds it process-level faults). */
  static async start(options: HubOptions, log: Logger, faults = new Faults(log)): Promise<Hub> {
    const running = runningHubPid(options.dataDir);
    if (running) throw new Error(`a hub is already running on ${options.dataDir} (pid ${running}): stop it first or use another --data-dir`);
    // [D-3] Before anything is created or opened: a damaged store is refused by name, never replaced.
    ensureStateUsable(options.dataDir, options.resetState === true, (line) => log.warn(line), { external: options.databaseUrl !== undefined });
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
      const db = await openEngine(options, (message) => log.warn(message));
      stops.push(() => db.close());
      if (db.dialect === 'postgres') log.info(`the store is PostgreSQL at ${db.where}`);
      // [H-1] Without --failover this is the only hub on its database (with it, the lock is the cluster's).
      if (db.dialect === 'postgres' && options.databaseUrl && !options.cluster) {
        const lock = await ExclusiveLock.take(options.databaseUrl, (problem) => log.warn(problem));
        stops.push(() => lock.release());
      }
      // [D-2] The WAL and its checkpoints are SQLite's; a Postgres server keeps its own.
      const checkpointer = db instanceof SqliteEngine ? new WalCheckpointer(db.db, log) : undefined;
      if (checkpointer) stops.push(() => checkpointer.stop());
      const wrote = () => checkpointer?.wrote();
      const store = new StateStore(db);
      // [D-4] On SQLite the files were checked against mqttkit.db above; the server's bridges are known only now.
      if (db.dialect === 'postgres') await ensureBridgeFilesUsable(options.dataDir, store, options.resetState === true, (line) => log.warn(line));
      const accounts = new AccountStore(db);
      // A conformance run killed outright left its temporary admin account: it must not stay a standing login.
      for (const name of await removeLeftoverCheckerAccounts(accounts))
        log.warn(`removed the admin account ${name}, left by an interrupted 'mqttkit conformance'`);
      const pincode = options.pincode ?? (await store.getSetting(PINCODE_SETTING)) ?? generatePincode();
      await store.setSetting(PINCODE_SETTING, pincode);

      const bus = new EventBus((event, error) => faults.record('listenerErrors', error, { event }));
      stops.push(installTestFaults(bus));
      const catalog = new HapCatalog();
      const registry = new DeviceRegistry(bus, catalog, { writeTimeoutMs: options.writeTimeoutMs });
      // One device's data never stops the hub: records it cannot use are held aside, named, kept as they are.
      const damaged: Array<{ id: string; problem: string }> = [];
      // [E-10] a gateway whose account is gone (removed while the hub was stopped) speaks for no one, and
      // [E-14] its peripherals' devices go with it, before they are restored (their ids are free again).
      const espnow = await EspNowPairings.load(db);
      for (const p of espnow.list()) {
        if ((await accounts.get(p.gateway))?.createdAt !== p.gatewaySince) {
          await store.deleteDevice(p.peripheral);
          await espnow.unpair(p.peripheral);
          log.warn({ device: p.peripheral }, `ESP-NOW peripheral ${p.peripheral} unpaired and removed: its gateway ${p.gateway}'s account is gone`);
        }
      }
      const restored = registry.restore(await store.loadDevices((id, problem) => damaged.push({ id, problem })), {
        noneConnected: options.mqtt.kind === 'embedded',
      });
      for (const { id, problem } of damaged) registry.hold(id, problem);
      for (const { id, problem } of [...damaged, ...restored.held]) {
        log.error(
          { device: id, problem },
          `device ${id} left out: its stored record cannot be used (${problem}); kept untouched: remove it (mqttkit device remove ${id}) to start it afresh`,
        );
      }
      stops.push(() => registry.close());

      // The features, started in this order and stopped in reverse; each takes what it listens to through its scope.
      // A damaged job, rollout or device_info row is named in the log; the store ends it as failed. [D-3]
      const otaStore = new OtaStore(db, (where, problem) => log.error({ where }, problem));
      // With Mosquitto, a gateway's rights are given and taken there too (dynamic security, [E-10]).
      const brokerRights = options.mqtt.kind === 'external' ? mosquittoPeripheralRights(options.mqtt.url, options.dataDir) : undefined;
      const managesBroker = () => brokerRights !== undefined && readBrokerCredentials(options.dataDir) !== undefined;
      const ctx: HubContext = {
        options,
        db,
        bus,
        registry,
        catalog,
        store,
        accounts,
        ota: otaStore,
        history: new HistoryStore(db),
        faults,
        pincode,
        wrote,
        espnow,
      };
      const features = new FeatureRunner(bus, log);
      stops.push(() => features.stop());
      const homekit = new HomeKitFeature(ctx);
      const mqtt = new MqttFeature(ctx);
      const commands = new CommandsFeature(ctx, () => mqtt.link);
      const ota = new OtaFeature(ctx, () => ({ link: mqtt.link, channel: commands.channel, broker: mqtt.broker }));
      const matter = options.matter ? new MatterFeature(ctx, options.matter.port) : undefined;
      let matterRunning = false;
      const web = new WebFeature(ctx, () => ({
        matter: () => (matterRunning ? matter : undefined),
        channel: commands.channel,
        bridges: () => homekit.bridges(),
        counters: () => mqtt.counters(),
        cancelJob: (id, by) => ota.cancel(id, by),
        cancelRollout: (id, by) => ota.cancelRollout(id, by),
        otaOff: options.ota === false ? OTA_OFF_MESSAGE : undefined,
        disconnect: (id, how) => mqtt.broker?.disconnect(id, how),
        registration: () => mqtt.registration,
        espnow: {
          pairings: espnow,
          command: (id, text) => mqtt.link.publish(`cmnd/${id}/OTA`, text, { qos: 1, retain: false }),
          disconnect: (id) => mqtt.broker?.disconnect(id),
          brokerRights,
        },
        removeDevice: async (id, reason = 'removed from the dashboard') => {
          // A device's login only: an MQTT admin that published under this id keeps its account (removing
          // a device is open to API tokens; an admin is removed with 'mqttkit user remove').
          const account = await accounts.get(id);
          const ownLogin = account === undefined || account.role === 'device';
          // With Mosquitto its login (client) and rights (role, with its peripherals') go first, as with
          // 'mqttkit device remove'; if Mosquitto does not finish, the hub keeps the device (trying again finishes it).
          // Only a client the hub's own store says is a device's: never one made elsewhere in Mosquitto whose
          // name some publisher used as a device id (removing a device is open to API tokens), nor the hub's own login.
          if (account?.role === 'device' && managesBroker() && id !== readBrokerCredentials(options.dataDir)?.username) {
            try {
              await brokerRights?.removeDevice(id);
            } catch (error) {
              throw new HttpError(502, `Mosquitto did not finish removing ${id} (${(error as Error).message}): the hub keeps the device; try again`);
            }
          }
          if (ownLogin) {
            await accounts.remove(id);
            // Cut off at once, before anything else is awaited: a connection that dropped by itself meanwhile
            // would publish its last will ($state offline) and make a device of it again.
            mqtt.broker?.disconnect(id, { removed: true });
          }
          // [E-10] its peripherals lose their voice with it; [E-14] and their devices go too
          for (const peripheral of await espnow.removeGateway(id)) registry.remove(peripheral, `its ESP-NOW gateway ${id} was removed`);
          registry.remove(id, reason);
        },
      }));
      await features.start(new PersistenceFeature(ctx));
      await features.start(new ActivityFeature(ctx));
      if (options.homekit !== false) await features.start(homekit);
      else log.info('HomeKit is off (--no-homekit): no bridge is published');
      await features.start(mqtt);
      await features.start(commands, mqtt.link);
      if (options.ota !== false) await features.start(ota, mqtt.link);
      else log.info('OTA is off (--no-ota): no job runs and no pending flag is published');
      if (options.history !== false) await features.start(new HistoryFeature(ctx));
      else log.info('history is off (--no-history): no values are recorded');
      if (options.httpPort !== -1) await features.start(web);
      await features.start(new PresenceFeature(ctx));
      // [E-14] Mosquitto's rights follow the pairings, whatever changed while the hub was stopped (an
      // offline unpair that could not reach it, an interrupted pairing). Mosquitto down: logged, the hub runs.
      if (managesBroker()) {
        // A conformance run killed outright left its temporary admin login in Mosquitto too (its password
        // was in the killed process only, but a standing every-topic login must not stay).
        void brokerRights?.removeAdminClients(isCheckerAccountName).then(
          (removed) => {
            for (const name of removed) log.warn(`removed Mosquitto's admin client ${name}, left by an interrupted 'mqttkit conformance'`);
          },
          (error: Error) => log.error({ err: error.message }, "cannot look for the admin clients an interrupted 'mqttkit conformance' left in Mosquitto"),
        );
        // MQTT admins made before the admin role existed held the hub's, with Mosquitto's own API. In the
        // background: a slow Mosquitto does not hold up the start (each request ends within 5 s).
        const admins = (await accounts.list()).filter((a) => a.role === 'admin').map((a) => a.name);
        void brokerRights?.narrowAdmins(admins).then(
          ({ changed, failed }) => {
            for (const name of changed)
              log.warn(`MQTT admin ${name} no longer holds Mosquitto's dynamic-security API (role ${HUB_ROLE} replaced by mqttkit-admin)`);
            for (const name of failed)
              log.error(`cannot take Mosquitto's dynamic-security API from MQTT admin ${name} (role ${HUB_ROLE}): remove that role from it in Mosquitto`);
          },
          (error: Error) => log.error({ err: error.message }, "cannot check the MQTT admins' rights at Mosquitto"),
        );
        await brokerRights?.reconcile(espnow.list()).then(
          (changed) => {
            for (const line of changed) log.warn(`Mosquitto's ESP-NOW rights corrected to match the pairings: ${line}`);
          },
          (error: Error) => log.error({ err: error.message }, "cannot check Mosquitto's ESP-NOW rights against the pairings"),
        );
      }
      // [P-27] also without --ha-discovery: it clears the configs an earlier run with it left retained
      await features.start(new HaDiscoveryFeature(ctx, () => mqtt.link, options.haDiscovery?.prefix), mqtt.link);
      if (matter) {
        await features.start(matter);
        matterRunning = true;
        stops.push(() => {
          matterRunning = false;
        });
      }
      const webPort = web.port;
      const link = mqtt.link;
      const broker = mqtt.broker;

      const hub = new Hub(options, registry, bus, pincode, link.address, homekit, webPort, matter);
      hub.#stops.push(...stops);
      hub.#needsAdmin = async () => webPort !== undefined && !(await new WebStore(db).hasUsers());
      hub.webTls = web.tls;
      const mqttInfo = broker
        ? { address: link.address, embedded: true, host: broker.host, port: broker.port, tlsPort: broker.tlsPort }
        : { address: link.address, embedded: false };
      const startedAt = new Date().toISOString();
      const saveRuntime = () =>
        writeRuntime(options.dataDir, {
          pid: process.pid,
          startedAt,
          mqtt: mqttInfo,
          bridges: hub.bridges().map(({ index, name, port, username, setupURI }) => ({ index, name, port, username, setupURI })),
          httpPort: webPort,
          httpHost: webPort === undefined ? undefined : options.httpHost,
          otaMaxFileSize: options.otaMaxFileSize,
          httpTls: web.tls && { certFile: web.tls.certFile, fingerprint256: web.tls.fingerprint256 },
        });
      // [D-4] A published bridge has keys and ids on disk; from now on their loss is damage.
      const markPublished = async () => {
        for (const bridge of hub.bridges()) if (bridge.port !== undefined) await store.markBridgePublished(bridge.username);
      };
      await markPublished();
      saveRuntime();
      // A new bridge (past 149 devices) opens while running; keep the file current.
      homekit.onPublished = () => {
        markPublished().catch((error: unknown) => log.error({ err: (error as Error).message }, 'could not record that a new bridge was published'));
        saveRuntime();
      };
      return hub;
    } catch (error) {
      await undo();
      throw error;
    }
  }

  /** The dashboard has no admin account yet: its first visit creates one (the banner says so). */
  needsAdmin(): Promise<boolean> {
    return this.#needsAdmin();
  }

  bridges(): BridgeStatus[] {
    return this.homekit.bridges();
  }

  async stop(): Promise<void> {
    for (const stop of this.#stops.splice(0).reverse()) await stop();
    removeRuntime(this.options.dataDir);
  }
}
