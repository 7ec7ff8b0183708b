/**
 * The MQTT topic grammar of docs/protocol.md. Pure functions: parse a topic into what it addresses,
 * and format the topics the hub publishes.
 */
import { fail, ok, type Result } from './result.js';
import { didYouMean } from './suggest.js';

export const TOPIC_ROOT = 'HomeKit';
export const SET_SUFFIX = 'set';
/** Each indexed service is its own HAP service; an accessory holds at most 100 services. */
export const MAX_SERVICE_INDEX = 99;

const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const INDEX = /^[1-9][0-9]?$/;
/** HAP-NodeJS's type names: letters and digits, and one `_` (`PM2_5Density`). */
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/** [P-4] Longest service type or characteristic name (HAP's longest is under 40). */
export const MAX_NAME_LENGTH = 64;

/**
 * [P-2] Ids no device may take, compared case-insensitively: the roots of the hub's topics, and `OTA`.
 * `<x>/OTA` is device x's OTA trigger (docs/ota.md), so a device `OTA` would own `HomeKit/OTA`,
 * `stat/OTA` and `tele/OTA`, and a device `cmnd` would read `cmnd/OTA`. (`$…` ids are invalid anyway.)
 */
export const RESERVED_DEVICE_IDS = [TOPIC_ROOT, 'cmnd', 'stat', 'tele', 'OTA'] as const;

export const META_FIELDS = ['name', 'manufacturer', 'model', 'firmware'] as const;
export type MetaField = (typeof META_FIELDS)[number];

/** Topics the hub itself publishes under a device; reading them back is not input. */
const HUB_OUTPUT_TOPICS = ['$error'];
const KNOWN_DOLLAR_TOPICS = ['$state', '$keepalive', ...META_FIELDS.map((f) => `$${f}`), ...HUB_OUTPUT_TOPICS];

/** A service of a device: `index` 0 is the unindexed service, 1..99 the indexed ones. */
export interface ServiceAddress {
  service: string;
  index: number;
}

export type ParsedTopic =
  | ({ kind: 'value'; deviceId: string; characteristic: string } & ServiceAddress)
  | ({ kind: 'set'; deviceId: string; characteristic: string } & ServiceAddress)
  | { kind: 'meta'; deviceId: string; field: MetaField }
  | { kind: 'state'; deviceId: string }
  | { kind: 'keepalive'; deviceId: string }
  | { kind: 'hub-output'; deviceId: string };

export interface TopicError {
  message: string;
  /** Known when the device id itself was valid, so the refusal can be reported to that device. */
  deviceId?: string;
}

const SHAPE = `expected ${TOPIC_ROOT}/<deviceId>/<ServiceType>[/<index>]/<Characteristic> or ${TOPIC_ROOT}/<deviceId>/$<field>`;

/** The id's syntax only; see also isReservedDeviceId. */
export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id);
}

export function isReservedDeviceId(id: string): boolean {
  const lower = id.toLowerCase();
  return RESERVED_DEVICE_IDS.some((reserved) => reserved.toLowerCase() === lower);
}

/** Why `id` cannot be a device id, or undefined when it can. */
export function deviceIdProblem(id: string): string | undefined {
  if (!isValidDeviceId(id)) return `device id '${truncate(id)}' is invalid: use 1-64 letters, digits, '_' or '-'`;
  if (isReservedDeviceId(id))
    return `device id '${id}' is reserved (${RESERVED_DEVICE_IDS.join(', ')} name the hub's topics, in any case): give the device another id`;
  return undefined;
}

export function parseTopic(topic: string): Result<ParsedTopic> & { deviceId?: string } {
  const levels = topic.split('/');
  if (levels[0] !== TOPIC_ROOT) return fail(`topic ${truncate(topic)}: not under ${TOPIC_ROOT}/`);
  const deviceId = levels[1] ?? '';
  // [P-2] device ids
  const idProblem = deviceIdProblem(deviceId);
  if (idProblem) return fail(`topic ${truncate(topic)}: ${idProblem}`);
  const refuse = (why: string) => ({ ...fail<ParsedTopic>(`topic ${truncate(topic)}: ${why}`), deviceId });

  const rest = levels.slice(2);
  if (rest.some((level) => level === '')) return refuse(`empty topic level; ${SHAPE}`);
  const first = rest[0];
  if (first === undefined) return refuse(`too few levels; ${SHAPE}`);

  if (first.startsWith('$')) {
    if (rest.length !== 1) return refuse(`'${first}' takes no further levels`);
    if (first === '$state') return ok({ kind: 'state', deviceId }); // [P-12]
    if (first === '$keepalive') return ok({ kind: 'keepalive', deviceId }); // [P-20]
    if (HUB_OUTPUT_TOPICS.includes(first)) return ok({ kind: 'hub-output', deviceId });
    const field = META_FIELDS.find((f) => `$${f}` === first); // [P-11]
    if (field) return ok({ kind: 'meta', deviceId, field });
    return refuse(`unknown field '${truncate(first)}' (known: ${KNOWN_DOLLAR_TOPICS.join(', ')})${didYouMean(first, KNOWN_DOLLAR_TOPICS)}`);
  }

  // [P-8] [Service, Char] | [Service, index, Char] | [Service, Char, set] | [Service, index, Char, set]
  let body = rest;
  let kind: 'value' | 'set' = 'value';
  const last = rest[rest.length - 1];
  if (last === SET_SUFFIX && (rest.length === 4 || (rest.length === 3 && !INDEX.test(rest[1]!)))) {
    kind = 'set';
    body = rest.slice(0, -1);
  }
  if (body.length < 2) return refuse(`too few levels; ${SHAPE}`);
  if (body.length > 3) return refuse(`too many levels; ${SHAPE}`);

  const [service, maybeIndex, maybeCharacteristic] = body as [string, string, string?];
  let index = 0;
  let characteristic = maybeIndex;
  if (maybeCharacteristic !== undefined) {
    if (!INDEX.test(maybeIndex)) {
      return refuse(`'${truncate(maybeIndex)}' is not a service index: use 1-${MAX_SERVICE_INDEX} for a second service of the same type`);
    }
    index = Number(maybeIndex);
    characteristic = maybeCharacteristic;
  }
  // [P-4] names are bounded before any work is done on them (the did-you-mean search, the catalog)
  for (const [name, what] of [
    [service, 'service type'],
    [characteristic, 'characteristic'],
  ] as const) {
    if (name.length > MAX_NAME_LENGTH)
      return refuse(`a ${what} name of ${name.length} characters is too long ('${truncate(name, 40)}'): at most ${MAX_NAME_LENGTH}`);
  }
  if (!NAME.test(service)) return refuse(`'${truncate(service)}' is not a service type name (letters and digits, e.g. TemperatureSensor)`);
  if (!NAME.test(characteristic)) {
    return refuse(`'${truncate(characteristic)}' is not a characteristic name (letters, digits and _, e.g. CurrentTemperature or PM2_5Density)`);
  }
  return ok({ kind, deviceId, service, index, characteristic });
}

function serviceLevels(address: ServiceAddress): string {
  return address.index === 0 ? address.service : `${address.service}/${address.index}`;
}

export function valueTopic(deviceId: string, address: ServiceAddress, characteristic: string): string {
  return `${TOPIC_ROOT}/${deviceId}/${serviceLevels(address)}/${characteristic}`;
}

export function setTopic(deviceId: string, address: ServiceAddress, characteristic: string): string {
  return `${valueTopic(deviceId, address, characteristic)}/${SET_SUFFIX}`;
}

export function deviceFieldTopic(deviceId: string, field: MetaField | 'state' | 'error'): string {
  return `${TOPIC_ROOT}/${deviceId}/$${field}`;
}

/** Keeps hostile input from flooding a log line. */
export function truncate(text: string, max = 80): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
