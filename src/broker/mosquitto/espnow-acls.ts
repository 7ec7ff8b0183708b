/**
 * [E-10] with Mosquitto: a gateway's role gets each paired peripheral's device ACLs (access-policy.ts,
 * the same spaces as the embedded broker's rule) over the dynamic-security API, and loses them on
 * unpairing (plus a deny for what a subscription made while paired would still receive). The peripheral
 * gets no client of its own, so nobody logs in under its id (test/e2e/espnow-mosquitto.test.ts).
 */
import { readBrokerCredentials } from '../../store/broker-credentials.js';
import type { DynsecClient } from './dynsec.js';

export interface PeripheralRights {
  grant(gateway: string, peripheral: string): Promise<void>;
  revoke(gateway: string, peripheral: string): Promise<void>;
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
  return {
    grant: (gateway, peripheral) =>
      withDynsec(async (dynsec, m) => {
        const rolename = m.deviceRoleName(gateway);
        for (const acl of denies(m, peripheral))
          await dynsec.run({ command: 'removeRoleACL', rolename, acltype: acl.acltype, topic: acl.topic }, ['not found']);
        for (const acl of m.deviceAcls(peripheral)) await dynsec.run({ command: 'addRoleACL', rolename, ...acl }, ['already exists']);
      }),
    revoke: (gateway, peripheral) =>
      withDynsec(async (dynsec, m) => {
        const rolename = m.deviceRoleName(gateway);
        for (const acl of m.deviceAcls(peripheral))
          await dynsec.run({ command: 'removeRoleACL', rolename, acltype: acl.acltype, topic: acl.topic }, ['not found']);
        for (const acl of denies(m, peripheral)) await dynsec.run({ command: 'addRoleACL', rolename, ...acl, allow: false }, ['already exists']);
      }),
  };
}
