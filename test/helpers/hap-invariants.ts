/**
 * What a HomeKit controller may rely on in a bridge's `/accessories` (read with hap-controller), as
 * checks that return every problem found rather than stopping at the first: the property tests print
 * them all beside the message sequence that caused them.
 *
 * The rules are HAP's (and HAP-NodeJS's, where the Home app is stricter than the spec):
 * - unique aids; exactly one AccessoryInformation per accessory; unique iids within an accessory;
 * - numbers within minValue..maxValue, on the minStep grid (counted from minValue, as HAP-NodeJS
 *   rounds), integers for integer formats, in valid-values / valid-values-range when given;
 * - strings within maxLen (64 by default, counted as HAP-NodeJS counts: UTF-16 units) and well-formed
 *   (no lone surrogate: iOS drops an accessory whose JSON is not valid UTF-8);
 * - Name, and ConfiguredName when not empty, pass HAP-NodeJS's checkName rule;
 * - SerialNumber and Model longer than one character, and serial numbers unique among bridged
 *   accessories (HAP-NodeJS: "otherwise HomeKit will reject this accessory").
 */
import { Characteristic, Service } from 'hap-nodejs';
import type { AccessoryDb } from './homekit-controller.js';

type Accessory = AccessoryDb['accessories'][number];
type HapService = Accessory['services'][number];
type HapCharacteristic = HapService['characteristics'][number];

const INFO = Service.AccessoryInformation.UUID;
const NAME = Characteristic.Name.UUID;
const CONFIGURED_NAME = Characteristic.ConfiguredName.UUID;
const SERIAL = Characteristic.SerialNumber.UUID;
const MODEL = Characteristic.Model.UUID;
/** Event-only characteristics: HAP-NodeJS answers reads with null on purpose. */
const NULL_ALLOWED = new Set([Characteristic.ProgrammableSwitchEvent.UUID]);
const INTEGER_FORMATS = new Set(['uint8', 'uint16', 'uint32', 'uint64', 'int']);
const DEFAULT_MAX_LEN = 64;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** HAP-NodeJS's checkName (hap-nodejs/dist/lib/util/checkName.js), copied verbatim. */
export const HAP_NAME_RULE = /^[\p{L}\p{N}][\p{L}\p{N}\u2019 '.,-]*[\p{L}\p{N}\u2019]$/u;

export function isValidHapName(value: string): boolean {
  return HAP_NAME_RULE.test(value);
}

/** The SerialNumber of an accessory's AccessoryInformation (mqttkit puts the device id there). */
export function serialOf(accessory: Accessory): string | undefined {
  const info = accessory.services.find((s) => s.type === INFO);
  const value = info?.characteristics.find((c) => c.type === SERIAL)?.value;
  return typeof value === 'string' ? value : undefined;
}

/**
 * The device id behind an accessory: its SerialNumber, where mqttkit writes a one-character id as
 * `mqttkit:<id>` (HAP-NodeJS ignores one-character serials).
 */
export function deviceIdOf(accessory: Accessory): string | undefined {
  const serial = serialOf(accessory);
  return serial?.startsWith('mqttkit:') ? serial.slice('mqttkit:'.length) : serial;
}

/** Every broken rule of the list above, one line each, naming the accessory and iid. */
export function hapProblems(db: AccessoryDb): string[] {
  const problems: string[] = [];
  const aids = new Set<number>();
  const serials = new Map<string, number>();
  for (const accessory of db.accessories) {
    const where = `aid ${accessory.aid}${serialOf(accessory) !== undefined ? ` (serial ${show(serialOf(accessory))})` : ''}`;
    if (aids.has(accessory.aid)) problems.push(`duplicate aid ${accessory.aid}`);
    aids.add(accessory.aid);

    const infos = accessory.services.filter((s) => s.type === INFO);
    if (infos.length !== 1) problems.push(`${where}: ${infos.length} AccessoryInformation services (must be exactly 1)`);

    const iids = new Map<number, string>();
    const claim = (iid: number | undefined, what: string) => {
      if (iid === undefined) return problems.push(`${where}: ${what} has no iid`);
      const previous = iids.get(iid);
      if (previous) problems.push(`${where}: iid ${iid} used by ${previous} and by ${what}`);
      else iids.set(iid, what);
    };
    for (const service of accessory.services) {
      claim(service.iid, `service ${typeName(service.type, 'service')}`);
      for (const c of service.characteristics) {
        claim(c.iid, `characteristic ${c.description ?? c.type}`);
        for (const problem of valueProblems(c)) problems.push(`${where} iid ${c.iid} ${c.description ?? c.type}: ${problem}`);
      }
    }

    if (accessory.aid !== 1) {
      const serial = serialOf(accessory);
      if (serial !== undefined) {
        const other = serials.get(serial);
        if (other !== undefined) problems.push(`aid ${other} and aid ${accessory.aid} share the SerialNumber ${show(serial)}`);
        serials.set(serial, accessory.aid);
      }
    }
  }
  return problems;
}

export function assertHapInvariants(db: AccessoryDb, context = '/accessories'): void {
  const problems = hapProblems(db);
  if (problems.length > 0) throw new Error(`${context} breaks HAP rules:\n  ${problems.join('\n  ')}`);
}

function valueProblems(c: HapCharacteristic): string[] {
  const problems: string[] = [];
  const value = c.value;
  if (!c.perms?.includes('pr')) return problems; // write-only: no value to check
  if (value === null || value === undefined) {
    if (!NULL_ALLOWED.has(c.type ?? '')) problems.push(`readable characteristic has no value (${String(value)})`);
    return problems;
  }
  switch (c.format) {
    case 'bool':
      if (value !== true && value !== false && value !== 0 && value !== 1) problems.push(`bool value ${show(value)}`);
      break;
    case 'string': {
      if (typeof value !== 'string') {
        problems.push(`string characteristic has a ${typeof value} value ${show(value)}`);
        break;
      }
      const maxLen = c.maxLen ?? DEFAULT_MAX_LEN;
      if (value.length > maxLen) problems.push(`string of ${value.length} UTF-16 units exceeds maxLen ${maxLen}: ${show(value)}`);
      if (LONE_SURROGATE.test(value)) problems.push(`string is not well-formed Unicode (lone surrogate): ${show(value)}`);
      // HAP-NodeJS checks ConfiguredName only when set (Characteristic.js: `value.length > 0 && ...`).
      if ((c.type === NAME || (c.type === CONFIGURED_NAME && value.length > 0)) && !isValidHapName(value)) {
        problems.push(`name ${show(value)} breaks HAP-NodeJS's name rule (letters, digits, spaces, ' . , - only; letter or digit at both ends)`);
      }
      if ((c.type === SERIAL || c.type === MODEL) && value.length <= 1) problems.push(`${c.description} ${show(value)} must be longer than 1 character`);
      break;
    }
    case 'float':
    case 'uint8':
    case 'uint16':
    case 'uint32':
    case 'uint64':
    case 'int': {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        problems.push(`${c.format} characteristic has a non-number value ${show(value)}`);
        break;
      }
      if (INTEGER_FORMATS.has(c.format) && !Number.isInteger(value)) problems.push(`${c.format} value ${value} is not a whole number`);
      if (c.minValue !== undefined && value < c.minValue) problems.push(`value ${value} below minValue ${c.minValue}`);
      if (c.maxValue !== undefined && value > c.maxValue) problems.push(`value ${value} above maxValue ${c.maxValue}`);
      if (c.minStep !== undefined && c.minStep > 0) {
        const steps = (value - (c.minValue ?? 0)) / c.minStep;
        if (Math.abs(steps - Math.round(steps)) > 1e-6) problems.push(`value ${value} is off the minStep ${c.minStep} grid (from ${c.minValue ?? 0})`);
      }
      const valid = c['valid-values'];
      if (valid && valid.length > 0 && !valid.includes(value)) problems.push(`value ${value} not in valid-values [${valid.join(', ')}]`);
      const range = c['valid-values-range'];
      if (range && range.length === 2 && (value < range[0]! || value > range[1]!))
        problems.push(`value ${value} outside valid-values-range ${range[0]}..${range[1]}`);
      break;
    }
    default:
      break;
  }
  return problems;
}

/**
 * The ids a controller keys everything on (rooms, scenes, automations): per accessory, each service's
 * iid with its type, and each characteristic's iid with its type.
 */
export interface AccessoryIds {
  aid: number;
  /** `serviceIid:serviceType` -> characteristic type -> iid */
  services: Map<string, Map<string, number>>;
}

/** Ids of every bridged accessory, by SerialNumber (the device id). */
export function idsBySerial(db: AccessoryDb): Map<string, AccessoryIds> {
  const result = new Map<string, AccessoryIds>();
  for (const accessory of db.accessories) {
    if (accessory.aid === 1) continue;
    const serial = deviceIdOf(accessory);
    if (serial === undefined) continue;
    const services = new Map<string, Map<string, number>>();
    for (const s of accessory.services) {
      services.set(`${s.iid}:${s.type}`, new Map(s.characteristics.map((c) => [c.type ?? '?', c.iid ?? -1])));
    }
    result.set(serial, { aid: accessory.aid, services });
  }
  return result;
}

/**
 * What changed for one accessory that must not: its aid, a service that vanished or changed type,
 * a characteristic whose iid changed or that is gone. `allowMissingCharacteristics` tolerates a gone
 * characteristic (to hunt past that known failure); one that is there must still have its iid.
 */
export function idChanges(id: string, before: AccessoryIds, after: AccessoryIds | undefined, allowMissingCharacteristics = false): string[] {
  if (!after) return [`device ${show(id)} (aid ${before.aid}) is gone`];
  const problems: string[] = [];
  if (after.aid !== before.aid) problems.push(`device ${show(id)} changed aid ${before.aid} -> ${after.aid}`);
  for (const [service, chars] of before.services) {
    const now = after.services.get(service);
    if (!now) {
      problems.push(`device ${show(id)}: service ${service.split(':')[0]} (${typeName(service.split(':')[1]!, 'service')}) is gone or changed iid`);
      continue;
    }
    for (const [type, iid] of chars) {
      const nowIid = now.get(type);
      if (nowIid === undefined) {
        if (!allowMissingCharacteristics) problems.push(`device ${show(id)}: characteristic ${typeName(type, 'characteristic')} (iid ${iid}) is gone`);
      } else if (nowIid !== iid) problems.push(`device ${show(id)}: characteristic ${typeName(type, 'characteristic')} changed iid ${iid} -> ${nowIid}`);
    }
  }
  return problems;
}

const NAMES = new Map<string, string>();
for (const [kind, table] of [
  ['service', Service],
  ['characteristic', Characteristic],
] as const) {
  for (const [name, value] of Object.entries(table)) {
    const uuid = (value as { UUID?: unknown }).UUID;
    if (typeof uuid === 'string' && !NAMES.has(`${kind}:${uuid}`)) NAMES.set(`${kind}:${uuid}`, name);
  }
}

/** HAP-NodeJS's name for a service or characteristic type UUID, for readable messages. */
export function typeName(uuid: string, kind: 'service' | 'characteristic'): string {
  return NAMES.get(`${kind}:${uuid}`) ?? uuid;
}

/** A value as JSON, cut short: hostile strings stay readable and bounded. */
export function show(value: unknown, max = 120): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= max ? text : `${text.slice(0, max)}…(${text.length} chars)`;
}
