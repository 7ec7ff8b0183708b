/**
 * [E-10] with Mosquitto: a gateway's role gets each paired peripheral's device ACLs (access-policy.ts,
 * the same spaces as the embedded broker's rule) over the dynamic-security API, and loses them on
 * unpairing (plus a deny for what a subscription made while paired would still receive). The peripheral
 * gets no client of its own, so nobody logs in under its id (test/e2e/espnow-mosquitto.test.ts).
 */
import { z } from 'zod';
import { readBrokerCredentials } from '../../store/broker-credentials.js';
import type { DynsecAcl, DynsecClient } from './dynsec.js';
import { ADMIN_ACLS, ADMIN_ROLE, HUB_ROLE } from './mosquitto-config.js';

export interface PeripheralRights {
  grant(gateway: string, peripheral: string): Promise<void>;
  revoke(gateway: string, peripheral: string): Promise<void>;
  /** Is `id` a Mosquitto client (a login)? */
  hasClient(id: string): Promise<boolean>;
  /** A removed device's client and role (with every peripheral's rights) go. */
  removeDevice(id: string): Promise<void>;
  /**
   * [E-14] Makes every device role's rights match the pairings: a peripheral's ACLs only in its gateway's
   * role, and a deny for the deliveries of any peripheral a role held. ACLs of any other shape (an admin's
   * own on a device role) are left alone. Returns what it changed.
   */
  reconcile(pairings: ReadonlyArray<{ gateway: string; peripheral: string }>): Promise<string[]>;
  /**
   * Deletes the admin clients (the hub's role, nothing else) whose names `match`: the temporary logins a
   * killed `mqttkit conformance` left. Returns their names.
   */
  removeAdminClients(match: (name: string) => boolean): Promise<string[]>;
  /**
   * Takes Mosquitto's own API away from these MQTT admins: a client holding the hub's role gets the admin
   * role instead (every topic, no `$CONTROL`). Versions before the admin role gave admins the hub's. Returns
   * the names changed; Mosquitto drops their connections (they log in again at once).
   */
  narrowAdmins(names: readonly string[]): Promise<{ changed: string[]; failed: string[] }>;
}

const ROLE_PREFIX = 'mqttkit-device-';
const aclKey = (acl: { acltype: string; topic: string; allow: boolean }) => `${acl.acltype} ${acl.topic} ${acl.allow}`;
const roleAcls = z.looseObject({
  role: z.looseObject({
    acls: z.array(z.looseObject({ acltype: z.string(), topic: z.string(), allow: z.boolean() })).default([]),
  }),
});
const roleNames = z.looseObject({ roles: z.array(z.union([z.string(), z.looseObject({ rolename: z.string() })])).default([]) });
const clientNames = z.looseObject({ clients: z.array(z.union([z.string(), z.looseObject({ username: z.string() })])).default([]) });
const clientRoles = z.looseObject({
  client: z.looseObject({
    roles: z.array(z.looseObject({ rolename: z.string() })).default([]),
    groups: z.array(z.unknown()).default([]),
  }),
});

/**
 * The device whose peripheral rights `acl` is one of (an allow exactly as deviceAcls(id) gives it), or
 * undefined: an ACL of any other shape (an admin's own, e.g. `subscribePattern weather/#`) is nobody's.
 */
export function peripheralOfAcl(acl: { acltype: string; topic: string; allow: boolean }, deviceAcls: (id: string) => DynsecAcl[]): string | undefined {
  if (!acl.allow) return undefined;
  const levels = acl.topic.split('/');
  // The id is the second level (HomeKit/<id>/…, stat/<id>/…, tele/<id>/…, cmnd/<id>/…) or the first (<id>/OTA).
  for (const id of new Set([levels[1], levels[0]])) {
    if (!id || id === '+' || id === '#') continue;
    if (deviceAcls(id).some((own) => aclKey(own) === aclKey(acl))) return id;
  }
  return undefined;
}

export function mosquittoPeripheralRights(url: string, dataDir: string): PeripheralRights {
  const withDynsec = async (fn: (dynsec: DynsecClient, m: typeof import('./dynsec.js')) => Promise<void>) => {
    const credentials = readBrokerCredentials(dataDir);
    if (!credentials) throw new Error(`${dataDir} holds no broker login for Mosquitto's dynamic security: run 'mqttkit mosquitto-config' with this --data-dir`);
    const m = await import('./dynsec.js');
    const dynsec = await m.DynsecClient.connect(url, credentials.username, credentials.password);
    try {
      await fn(dynsec, m);
    } finally {
      await dynsec.close();
    }
  };
  // Mosquitto's default lets a subscription receive (publishClientReceive): a revoked gateway's old
  // subscription is closed by an explicit deny, which a new pairing takes away again.
  const denies = (m: typeof import('./dynsec.js'), peripheral: string) => m.deviceAcls(peripheral).filter((acl) => acl.acltype === 'publishClientReceive');
  const grant = async (dynsec: DynsecClient, m: typeof import('./dynsec.js'), gateway: string, peripheral: string) => {
    const rolename = m.deviceRoleName(gateway);
    for (const acl of denies(m, peripheral)) await dynsec.run({ command: 'removeRoleACL', rolename, acltype: acl.acltype, topic: acl.topic }, ['not found']);
    for (const acl of m.deviceAcls(peripheral)) await dynsec.run({ command: 'addRoleACL', rolename, ...acl }, ['already exists']);
  };
  return {
    grant: (gateway, peripheral) => withDynsec((dynsec, m) => grant(dynsec, m, gateway, peripheral)),
    revoke: (gateway, peripheral) =>
      withDynsec(async (dynsec, m) => {
        const rolename = m.deviceRoleName(gateway);
        for (const acl of m.deviceAcls(peripheral))
          await dynsec.run({ command: 'removeRoleACL', rolename, acltype: acl.acltype, topic: acl.topic }, ['not found']);
        for (const acl of denies(m, peripheral)) await dynsec.run({ command: 'addRoleACL', rolename, ...acl, allow: false }, ['already exists']);
      }),
    hasClient: async (id) => {
      let found = false;
      await withDynsec(async (dynsec) => {
        const data = await dynsec.run({ command: 'getClient', username: id }, ['not found']);
        found = typeof data === 'object' && data !== null && 'client' in data;
      });
      return found;
    },
    removeDevice: (id) => withDynsec((dynsec) => dynsec.removeDevice(id)),
    removeAdminClients: async (match) => {
      const removed: string[] = [];
      await withDynsec(async (dynsec) => {
        const listed = clientNames.parse(await dynsec.run({ command: 'listClients', verbose: false, count: -1, offset: 0 }));
        for (const entry of listed.clients) {
          const name = typeof entry === 'string' ? entry : entry.username;
          if (!match(name)) continue;
          const answer = clientRoles.safeParse(await dynsec.run({ command: 'getClient', username: name }, ['not found']));
          // Only a login exactly as the checker makes it: one somebody gave other rights is theirs.
          const roles = answer.success ? answer.data.client.roles.map((r) => r.rolename) : [];
          // (the hub's role: made by versions before mqttkit-admin existed)
          const checkers = [ADMIN_ROLE, HUB_ROLE];
          if (roles.length !== 1 || !checkers.includes(roles[0]!) || !answer.success || answer.data.client.groups.length > 0) continue;
          await dynsec.run({ command: 'deleteClient', username: name }, ['not found']);
          removed.push(name);
        }
      });
      return removed;
    },
    narrowAdmins: async (names) => {
      const changed: string[] = [];
      const failed: string[] = [];
      if (names.length === 0) return { changed, failed };
      const hubLogin = readBrokerCredentials(dataDir)?.username;
      await withDynsec(async (dynsec) => {
        for (const name of names) {
          if (name === hubLogin) continue;
          // One admin that cannot be changed (half-narrowed by a start that was cut off, changed by hand)
          // does not keep the others from being checked.
          try {
            const answer = clientRoles.safeParse(await dynsec.run({ command: 'getClient', username: name }, ['not found']));
            const roles = answer.success ? answer.data.client.roles.map((r) => r.rolename) : [];
            if (!roles.includes(HUB_ROLE)) continue;
            await dynsec.run({ command: 'createRole', rolename: ADMIN_ROLE, acls: ADMIN_ACLS }, ['already exists']);
            // (Mosquitto 2.0 answers adding a role a client holds already with "Internal error": asked only when missing)
            if (!roles.includes(ADMIN_ROLE)) await dynsec.run({ command: 'addClientRole', username: name, rolename: ADMIN_ROLE });
            await dynsec.run({ command: 'removeClientRole', username: name, rolename: HUB_ROLE });
            changed.push(name);
          } catch {
            failed.push(name);
          }
        }
      });
      return { changed, failed };
    },
    reconcile: async (pairings) => {
      const changed: string[] = [];
      await withDynsec(async (dynsec, m) => {
        const listed = roleNames.parse(await dynsec.run({ command: 'listRoles', verbose: false, count: -1, offset: 0 }));
        for (const entry of listed.roles) {
          const rolename = typeof entry === 'string' ? entry : entry.rolename;
          if (!rolename.startsWith(ROLE_PREFIX)) continue;
          const gateway = rolename.slice(ROLE_PREFIX.length);
          const peripherals = pairings.filter((p) => p.gateway === gateway).map((p) => p.peripheral);
          const wanted = new Set([gateway, ...peripherals].flatMap((id) => m.deviceAcls(id).map(aclKey)));
          const held = roleAcls.parse(await dynsec.run({ command: 'getRole', rolename })).role.acls;
          // A peripheral's allow the pairings do not explain (unpaired while the hub was stopped) goes, and what
          // its subscriptions would still receive is denied, as at unpairing. Only a peripheral's (exactly another
          // device's ACL, even one that has a login since: it must not stay impersonable): an ACL of any other
          // shape an admin added to the role is not ours to take away, and gets no deny.
          const stale = (a: (typeof held)[number]) => {
            const owner = peripheralOfAcl(a, m.deviceAcls);
            return owner !== undefined && owner !== gateway && !wanted.has(aclKey(a));
          };
          for (const acl of held.filter(stale)) {
            await dynsec.run({ command: 'removeRoleACL', rolename, acltype: acl.acltype, topic: acl.topic }, ['not found']);
            if (acl.acltype === 'publishClientReceive')
              await dynsec.run({ command: 'addRoleACL', rolename, acltype: acl.acltype, topic: acl.topic, allow: false }, ['already exists']);
            changed.push(`${gateway}: ${acl.acltype} ${acl.topic}`);
          }
          const heldKeys = new Set(held.map(aclKey));
          for (const peripheral of peripherals)
            if (m.deviceAcls(peripheral).some((acl) => !heldKeys.has(aclKey(acl)))) {
              await grant(dynsec, m, gateway, peripheral);
              changed.push(`${gateway}: rights for ${peripheral}`);
            }
        }
      });
      return changed;
    },
  };
}
