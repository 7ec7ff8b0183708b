/**
 * Who may touch which topics (docs/security.md). One definition, used by the embedded broker's hooks
 * and turned into Mosquitto dynamic-security ACLs, so both brokers enforce the same rules.
 */
import { isReservedDeviceId, isValidDeviceId, RESERVED_DEVICE_IDS, truncate } from '../core/topic.js';

export type AccountRole = 'device' | 'admin';

/**
 * The hub's own account at an external broker (HUB_ACCOUNT in broker/mosquitto/mosquitto-config.ts):
 * `device add mqttkit-hub` would replace it with a device.
 */
const HUB_BROKER_ACCOUNT = 'mqttkit-hub';

/**
 * [S-3] The topic spaces of device `<id>`: filters in MQTT syntax. A device publishes at least one
 * level below its id (`+/#`, where a bare `#` would also match `<root>/<id>` itself): so no device can
 * publish a two-level topic, and `<x>/OTA`, another device's OTA trigger, is out of every device's
 * reach by construction, whatever the ids ([P-2] reserves the colliding ones as well).
 */
export function devicePublishSpace(id: string): string[] {
  return [`HomeKit/${id}/+/#`, `stat/${id}/+/#`, `tele/${id}/+/#`];
}

export function deviceSubscribeSpace(id: string): string[] {
  return [`HomeKit/${id}/#`, `cmnd/${id}/#`, `${id}/OTA`];
}

/** May this account publish (or leave as its last will) on `topic`? */
export function mayPublish(role: AccountRole, id: string, topic: string): boolean {
  if (role === 'admin') return true;
  return devicePublishSpace(id).some((space) => filterCovers(space, topic));
}

/** May this account subscribe to `filter`? Wildcards must stay inside the device's own space. */
export function maySubscribe(role: AccountRole, id: string, filter: string): boolean {
  if (role === 'admin') return true;
  return deviceSubscribeSpace(id).some((space) => filterCovers(space, filter));
}

/**
 * True when every topic `filter` can match is also matched by `space`. A `+` or `#` in the filter is
 * only covered by the same or a broader wildcard at that level in the space.
 */
export function filterCovers(space: string, filter: string): boolean {
  const s = space.split('/');
  const f = filter.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = s[i];
    if (level === '#') return true;
    if (level === undefined) return false;
    if (level === '+') {
      if (f[i] === '#') return false;
      continue;
    }
    if (f[i] !== level) return false; // includes f[i] being a wildcard where the space is literal
  }
  return s.length === f.length || (s.length === f.length + 1 && s[f.length] === '#');
}

/** The syntax of an account name (MQTT or web). */
export function accountNameProblem(name: string): string | undefined {
  return isValidDeviceId(name) ? undefined : `'${truncate(name)}' is not a valid name: use 1-64 letters, digits, '_' or '-'`;
}

/** [S-1] An MQTT account (device or admin) is also a client id at the broker: reserved ids stay free. */
export function mqttAccountNameProblem(name: string): string | undefined {
  const syntax = accountNameProblem(name);
  if (syntax) return syntax;
  // [P-2]
  if (isReservedDeviceId(name)) return `'${name}' is reserved: ${RESERVED_DEVICE_IDS.join(', ')} name the hub's topics (in any case); choose another name`;
  if (name === HUB_BROKER_ACCOUNT) return `'${name}' is reserved for the hub's own account at an external broker; choose another name`;
  return undefined;
}
