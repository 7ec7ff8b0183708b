/**
 * Runs one scenario against a real hub process on its own data dir, and checks the invariants after
 * every step: the hub runs and answers (MQTT, HTTP, HAP), it starts again on the same data dir,
 * `/accessories` read by hap-controller keeps HAP's rules (test/helpers/hap-invariants.ts), devices
 * that were not removed keep their AID and IIDs, no accessory appears for a device that never
 * published in its own space, and the hub's log shows no internal error or HAP-NodeJS value warning.
 *
 * Speed: messages go out at QoS 0 without waits; the end of a step is one sentinel per device, an
 * unknown `$sentinel<n>` field whose `$error` echo proves the hub has handled everything that device
 * sent before it (one connection's messages are handled in order).
 */
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import type { HttpClient } from 'hap-controller';
import type { MqttClient } from 'mqtt';
import { type AccessoryIds, deviceIdOf, hapProblems, idChanges, idsBySerial, show } from '../helpers/hap-invariants.js';
import { type AccessoryDb, characteristicUuid, type PairingData, pair, reconnect, serviceUuid } from '../helpers/homekit-controller.js';
import { hubLogProblems } from '../helpers/hub-log.js';
import { type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { connectDevice } from '../helpers/mqtt-device.js';
import { type Avoid, describeStep, type Message, mayBeRefused, type Scenario, type Step } from './scenario.js';

const ANSWER_MS = 15_000;

/** A broken invariant: which step, and every problem seen after it. */
export class InvariantFailure extends Error {
  constructor(
    readonly step: number,
    readonly problems: string[],
    stepText: string,
  ) {
    super(`after step ${step} (${stepText}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'InvariantFailure';
  }
}

interface DeviceLink {
  id: string;
  client?: MqttClient;
  /** Why the hub refused this id's first CONNECT (see mayBeRefused: reserved and one-character ids). */
  refused?: string;
  /** Sentinel keys waiting for their `$error` echo. */
  waiting: Map<string, () => void>;
  /** Set when the hub closed the connection while the test did not expect it. */
  droppedAt?: number;
  /** This step sent a packet far larger than any valid device message: the broker may cut it off (finding 4). */
  oversized?: boolean;
}

/** Larger than any valid device message (64-char id, long names, 1024-byte payload) can be. */
const OVERSIZED_PACKET_BYTES = 1500;

export interface SessionOptions {
  /** Print each step as it runs (MQTTKIT_PROP_VERBOSE=1). */
  verbose?: boolean;
  /** Known findings to tolerate while hunting for others (MQTTKIT_PROP_AVOID). */
  avoid?: Avoid;
}

/**
 * A data dir whose bridge is already paired with hap-controller: each scenario starts from a copy, so
 * it skips the pair-setup (SRP costs the hub ~0.5-1 s of CPU) and pays only for the hub's start.
 */
let template: Promise<{ dir: string; pairing: PairingData }> | undefined;

/**
 * A bridge name no other hub on this machine uses: hubs of parallel tests all advertise "mqttkit" on
 * mDNS, and a name conflict makes HAP-NodeJS rename the bridge "mqttkit (2)" (see found-cases.test.ts).
 */
export const BRIDGE_ARGS = ['--bridge-name', `Prop ${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`];

function pairedTemplate(): Promise<{ dir: string; pairing: PairingData }> {
  template ??= (async () => {
    const hub = await startHub({ args: BRIDGE_ARGS });
    try {
      const { client, pairing } = await pair(hub.info.bridges[0]!.port!);
      await client.close();
      return { dir: hub.dataDir, pairing };
    } finally {
      await hub.stop();
    }
  })();
  return template;
}

/** Removes the paired template data dir; call once when all scenarios are done. */
export async function disposeTemplate(): Promise<void> {
  if (!template) return;
  const { dir } = await template.catch(() => ({ dir: undefined }));
  template = undefined;
  if (dir) removeDataDir(dir);
}

export async function runScenario(scenario: Scenario, options: SessionOptions = {}): Promise<void> {
  const session = new HubSession(scenario, options);
  try {
    await session.open();
    for (const [i, step] of scenario.steps.entries()) await session.run(i + 1, step);
    const last = scenario.steps.at(-1);
    if (last?.kind !== 'restart') await session.run(scenario.steps.length + 1, { kind: 'restart', signal: 'SIGTERM' }, '(final) ');
  } finally {
    await session.close();
  }
}

class HubSession {
  readonly #dataDir = join(tempDataDir(), 'data');
  #hub: RunningHub | undefined;
  #controller: HttpClient | undefined;
  #pairing: PairingData | undefined;
  readonly #devices = new Map<string, DeviceLink>();
  /** Ids of each device's accessory as last read: what must not change. */
  #known = new Map<string, AccessoryIds>();
  /** Every aid seen in this run, with the device that had it: an aid is never handed to another device. */
  readonly #aidOwners = new Map<number, string>();
  /** Devices that published at least once in their own space (only they may have an accessory). */
  readonly #publishedOwn = new Set<string>();
  #lastDb: AccessoryDb | undefined;
  #logMark = 0;
  #sentinel = 0;
  #step = 0;
  #stepText = 'start';

  constructor(
    private readonly scenario: Scenario,
    private readonly options: SessionOptions,
  ) {}

  async open(): Promise<void> {
    const { dir, pairing } = await pairedTemplate();
    cpSync(dir, this.#dataDir, { recursive: true });
    this.#pairing = pairing;
    this.#hub = await startHub({ dataDir: this.#dataDir, args: BRIDGE_ARGS });
    this.#controller = reconnect(this.#hub.info.bridges[0]!.port!, pairing);
    const problems: string[] = [];
    await Promise.all(this.scenario.devices.map((id) => this.#connect(id, true, problems)));
    this.#fail(problems);
  }

  async run(index: number, step: Step, prefix = ''): Promise<void> {
    this.#step = index;
    this.#stepText = prefix + describeStep(step)[0]!;
    const started = performance.now();
    const problems: string[] = [];
    const removed = new Set<string>();
    let afterKill = false;
    let graceful = false;
    if (step.kind === 'publish') {
      await this.#publish(step.messages, removed);
    } else if (step.kind === 'write') {
      await this.#write(step);
    } else if (step.kind === 'reconnect') {
      await this.#reconnect(step, problems);
    } else {
      afterKill = step.signal === 'SIGKILL';
      graceful = !afterKill;
      await this.#restart(step.signal, problems);
    }
    await this.#check(problems, removed, afterKill, graceful);
    if (this.options.verbose) process.stdout.write(`# step ${index} (${Math.round(performance.now() - started)} ms): ${describeStep(step).join('\n#   ')}\n`);
  }

  async close(): Promise<void> {
    for (const device of this.#devices.values()) device.client?.end(true);
    await this.#controller?.close().catch(() => {});
    await this.#hub?.stop('SIGKILL');
    removeDataDir(join(this.#dataDir, '..'));
  }

  async #connect(id: string, first: boolean, problems: string[]): Promise<void> {
    const link: DeviceLink = this.#devices.get(id) ?? { id, waiting: new Map() };
    this.#devices.set(id, link);
    if (link.refused) return;
    link.client?.end(true);
    delete link.client;
    try {
      // Every device leaves a last will of `$state offline`, as the protocol asks ([P-1]).
      const client = await connectDevice(this.#hub!.info.mqtt.address, id, {
        connectTimeout: ANSWER_MS,
        will: { topic: `HomeKit/${id}/$state`, payload: 'offline' },
      });
      client.on('error', () => {}); // MQTT.js may emit errors after close; the checks report what matters
      client.on('close', () => {
        if (link.client === client) link.droppedAt ??= this.#step;
      });
      client.on('message', (_topic, payload) => {
        const text = payload.toString();
        for (const [key, resolve] of link.waiting) if (text.includes(`'${key}'`)) resolve();
      });
      await client.subscribeAsync(`HomeKit/${id}/$error`, { qos: 0 });
      link.client = client;
      delete link.droppedAt;
    } catch (error) {
      const why = (error as Error).message;
      if (first && mayBeRefused(id)) link.refused = why;
      else problems.push(`device ${show(id)} cannot connect${first ? '' : ' again (its account was registered)'}: ${why}`);
    }
  }

  async #publish(messages: Message[], removed: Set<string>): Promise<void> {
    for (const m of messages) {
      const link = this.#devices.get(m.from);
      if (!link?.client) continue; // refused at CONNECT: nothing it sends reaches the hub
      if (m.topic.startsWith(`HomeKit/${m.from}/`)) this.#publishedOwn.add(m.from);
      if (m.topic === `HomeKit/${m.from}/$state` && removes(m.payload)) removed.add(m.from);
      if (!link.client.connected) continue; // reported by the check
      if (Buffer.byteLength(m.topic) + m.payload.length > OVERSIZED_PACKET_BYTES) link.oversized = true;
      await link.client.publishAsync(m.topic, typeof m.payload === 'string' ? m.payload : Buffer.from(m.payload), { qos: 0, retain: m.retain });
    }
  }

  async #reconnect(step: Extract<Step, { kind: 'reconnect' }>, problems: string[]): Promise<void> {
    const link = this.#devices.get(step.device);
    const client = link?.client;
    if (!link || !client) return;
    delete link.client;
    if (step.how === 'clean') await client.endAsync();
    else {
      await new Promise<void>((resolve) => {
        client.once('close', () => resolve());
        client.stream.destroy(); // no DISCONNECT: the broker publishes the will
      });
      client.end(true);
    }
    await this.#connect(step.device, false, problems);
  }

  async #write(step: Extract<Step, { kind: 'write' }>): Promise<void> {
    const db = this.#lastDb;
    const accessory = db?.accessories.find((a) => a.aid !== 1 && deviceIdOf(a) === step.device);
    const service = accessory?.services.filter((s) => s.type === serviceUuid(step.service))[step.nth];
    const characteristic = service?.characteristics.find((c) => c.type === characteristicUuid(step.characteristic));
    if (!accessory || !characteristic) {
      if (this.options.verbose) process.stdout.write('#   (skipped: no such characteristic yet)\n');
      return;
    }
    const id = `${accessory.aid}.${characteristic.iid}`;
    const answer = await within(this.#controller!.setCharacteristics({ [id]: step.value }), 'the HomeKit write').catch((error: Error) => error.message);
    if (this.options.verbose) process.stdout.write(`#   ${id} -> ${show(answer)}\n`);
  }

  async #restart(signal: 'SIGTERM' | 'SIGKILL', problems: string[]): Promise<void> {
    const hub = this.#hub!;
    const alive = hub.child.exitCode === null && hub.child.signalCode === null;
    if (!alive) problems.push(`the hub had exited before the restart (code ${hub.child.exitCode}, signal ${hub.child.signalCode})`);
    for (const device of this.#devices.values()) {
      device.client?.end(true);
      delete device.client;
    }
    await this.#controller?.close().catch(() => {});
    const code = await hub.stop(signal);
    if (alive && signal === 'SIGTERM' && code !== 0) problems.push(`the hub exited with code ${code} on SIGTERM:\n${tail(hub.output())}`);
    for (const p of hubLogProblems(hub.output().slice(this.#logMark))) problems.push(`hub log while stopping: ${p.why}: ${p.line}`);
    this.#logMark = 0;
    try {
      this.#hub = await startHub({ dataDir: this.#dataDir, args: BRIDGE_ARGS });
    } catch (error) {
      problems.push(`the hub does not start again on the same data dir: ${(error as Error).message.slice(0, 3000)}`);
      this.#fail(problems);
    }
    this.#controller = reconnect(this.#hub!.info.bridges[0]!.port!, this.#pairing!);
    await Promise.all(this.scenario.devices.map((id) => this.#connect(id, false, problems)));
  }

  async #check(problems: string[], removed: Set<string>, afterKill: boolean, restartedGracefully = false): Promise<void> {
    const hub = this.#hub!;
    // The hub answers on MQTT: each device's sentinel comes back as $error.
    await Promise.all(
      [...this.#devices.values()].map(async (device) => {
        if (device.refused) return;
        if (!device.client?.connected && device.oversized) await this.#connect(device.id, false, problems); // a packet cap may cut it off; it must get back in
        delete device.oversized;
        if (!device.client?.connected) {
          problems.push(`the hub closed device ${show(device.id)}'s MQTT connection (during step ${device.droppedAt ?? '?'})`);
          return;
        }
        const key = `$sentinel${++this.#sentinel}`;
        const echoed = new Promise<void>((resolve) => device.waiting.set(key, resolve));
        try {
          await within(device.client.publishAsync(`HomeKit/${device.id}/${key}`, 'x', { qos: 1 }), `the PUBACK of ${device.id}'s sentinel`);
          await within(echoed, `the $error echo of ${device.id}'s sentinel`);
        } catch (error) {
          problems.push(`device ${show(device.id)}: ${(error as Error).message}`);
        } finally {
          device.waiting.delete(key);
        }
      }),
    );
    if (hub.child.exitCode !== null || hub.child.signalCode !== null) {
      problems.push(`the hub process exited (code ${hub.child.exitCode}, signal ${hub.child.signalCode}):\n${tail(hub.output())}`);
      this.#fail(problems);
    }
    // ... on HTTP
    try {
      const response = await within(fetch(`http://127.0.0.1:${hub.info.httpPort}/api/session`), 'GET /api/session');
      if (!response.ok) problems.push(`GET /api/session answered ${response.status}`);
    } catch (error) {
      problems.push(`the web API does not answer: ${(error as Error).message}`);
    }
    // ... and on HAP, with a database a controller accepts.
    let db: AccessoryDb;
    try {
      db = await within(this.#controller!.getAccessories(), 'GET /accessories');
    } catch (error) {
      problems.push(`hap-controller cannot read /accessories with its pairing: ${(error as Error).message}`);
      this.#fail(problems);
    }
    problems.push(...hapProblems(db!));
    const ids = new Map<string, AccessoryIds>();
    for (const [serial, accessoryIds] of idsBySerial(db!)) {
      const device = this.#deviceOfSerial(serial);
      if (device === undefined) problems.push(`an accessory has SerialNumber ${show(serial)}, which is no device's id`);
      else if (!this.#publishedOwn.has(device))
        problems.push(`an accessory for ${show(device)} appeared, though that device never published in its own topics`);
      ids.set(device ?? serial, accessoryIds);
    }
    for (const [serial, { aid }] of ids) {
      const owner = this.#aidOwners.get(aid);
      // A controller that missed the removal would take the new device for the old one: same aid, and
      // the same iids for the same services, so the old device's room, name and automations apply to it.
      if (owner !== undefined && owner !== serial && !this.options.avoid?.has('aid-reuse')) {
        problems.push(`aid ${aid}, which was device ${show(owner)}'s, now belongs to device ${show(serial)}`);
      }
      this.#aidOwners.set(aid, serial);
    }
    for (const [id, before] of this.#known) {
      if (removed.has(id)) continue; // removed (perhaps re-created) in this step: new ids are allowed
      // 'lost-optional': an optional characteristic seen < 1 s before a kill -9 may vanish (found by the kill loop)
      problems.push(...idChanges(id, before, ids.get(id), afterKill && (this.options.avoid?.has('lost-optional') ?? false)));
    }
    // A graceful restart changes no value HomeKit shows: each read-only value (a writable one may have
    // been pending) is what it was, or the default that HAP-NodeJS shows for a device that is offline
    // (after the restart a device may count as offline until it speaks).
    if (restartedGracefully && this.#lastDb) {
      const before = readOnlyValues(this.#lastDb);
      for (const [key, value] of readOnlyValues(db!)) {
        const old = before.get(key);
        // 'service-names': services renamed by a restart after $name changed (found case)
        if (value.what === 'Name' && this.options.avoid?.has('service-names')) continue;
        if (old && old.serial === value.serial && !removed.has(value.serial) && JSON.stringify(old.value) !== JSON.stringify(value.value) && !value.isDefault) {
          problems.push(`device ${show(value.serial)} ${value.what} (${key}) showed ${show(old.value)} before the restart and ${show(value.value)} after`);
        }
      }
    }
    const output = hub.output();
    for (const p of hubLogProblems(output.slice(this.#logMark))) problems.push(`hub log: ${p.why}: ${p.line}`);
    this.#logMark = output.length;
    this.#known = ids;
    this.#lastDb = db!;
    this.#fail(problems);
  }

  /**
   * The device an accessory's SerialNumber belongs to: the device id itself, or, for a one-character
   * id (which HomeKit refuses as a serial), a longer serial that starts with it, if only one such
   * device exists.
   */
  #deviceOfSerial(serial: string): string | undefined {
    if (this.scenario.devices.includes(serial)) return serial;
    const short = this.scenario.devices.filter((d) => d.length === 1 && serial.length > 1 && serial.startsWith(d));
    return short.length === 1 ? short[0] : undefined;
  }

  #fail(problems: string[]): void {
    if (problems.length > 0) throw new InvariantFailure(this.#step, problems, this.#stepText);
  }
}

/** Values of read-only characteristics of bridged accessories, by aid.iid, with the device's serial. */
function readOnlyValues(db: AccessoryDb): Map<string, { serial: string; what: string; value: unknown; isDefault: boolean }> {
  const values = new Map<string, { serial: string; what: string; value: unknown; isDefault: boolean }>();
  for (const accessory of db.accessories) {
    const serial = deviceIdOf(accessory);
    if (accessory.aid === 1 || serial === undefined) continue;
    for (const service of accessory.services) {
      for (const c of service.characteristics) {
        if (!c.perms?.includes('pr') || c.perms.includes('pw')) continue;
        // HAP-NodeJS's getDefaultValue: false, 0 or minValue (first valid value), ''
        const defaults: unknown[] = [false, 0, '', null, c.minValue, c['valid-values']?.[0]];
        values.set(`${accessory.aid}.${c.iid}`, { serial, what: c.description ?? c.type ?? '?', value: c.value, isDefault: defaults.includes(c.value) });
      }
    }
  }
  return values;
}

/** Does this `$state` payload remove the device ([P-12]: `removed`, any case, or empty)? */
function removes(payload: string | Uint8Array): boolean {
  let text: string;
  try {
    text = typeof payload === 'string' ? payload : new TextDecoder('utf-8', { fatal: true }).decode(payload);
  } catch {
    return false;
  }
  const word = text.trim().split(/\s+/)[0]!.toLowerCase();
  return word === '' || word === 'removed';
}

function within<T>(promise: Promise<T>, what: string, ms = ANSWER_MS): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function tail(output: string, lines = 30): string {
  return output
    .split('\n')
    .slice(-lines)
    .map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l))
    .join('\n');
}
