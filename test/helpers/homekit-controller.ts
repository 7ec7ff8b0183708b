/** A real HomeKit controller (hap-controller) over loopback, with lookups by device id and type name. */
import { generateKeyPairSync } from 'node:crypto';
import { HttpClient, PairMethods } from 'hap-controller';
import { Characteristic, Service } from 'hap-nodejs';
import { PINCODE } from './hub-process.js';

type PairingData = NonNullable<ReturnType<HttpClient['getLongTermData']>>;
type AccessoryDb = Awaited<ReturnType<HttpClient['getAccessories']>>;

export type { AccessoryDb, PairingData };

const SERIAL = Characteristic.SerialNumber.UUID;
const INFO = Service.AccessoryInformation.UUID;

export async function pair(port: number, pincode = PINCODE): Promise<{ client: HttpClient; pairing: PairingData }> {
  const client = new HttpClient(`mqttkit-test-${port}`, '127.0.0.1', port);
  await client.pairSetup(pincode, PairMethods.PairSetup);
  const pairing = client.getLongTermData();
  if (!pairing) throw new Error('pairing left no long-term data');
  return { client, pairing };
}

export function reconnect(port: number, pairing: PairingData): HttpClient {
  return new HttpClient(`mqttkit-test-${port}`, '127.0.0.1', port, pairing);
}

/**
 * A second controller (as when the owner shares the home): an admin adds its key with Add Pairing;
 * the returned pairing data lets it pair-verify on its own. Resolves once the bridge has accepted it.
 */
export async function addController(admin: HttpClient, adminPairing: PairingData, identifier: string): Promise<PairingData> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d!, 'base64url');
  const ltpk = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  await admin.addPairing(identifier, ltpk, false);
  return {
    ...adminPairing,
    iOSDevicePairingID: Buffer.from(identifier).toString('hex'),
    // libsodium's ed25519 secret key: seed followed by the public key
    iOSDeviceLTSK: Buffer.concat([seed, ltpk]).toString('hex'),
    iOSDeviceLTPK: ltpk.toString('hex'),
  };
}

/** Service and characteristic type UUIDs by HAP-NodeJS name. */
export const serviceUuid = (name: string) => (Service as unknown as Record<string, { UUID: string }>)[name]!.UUID;
export const characteristicUuid = (name: string) => (Characteristic as unknown as Record<string, { UUID: string }>)[name]!.UUID;

export function accessoryBySerial(db: AccessoryDb, serial: string) {
  return db.accessories.find((a) => a.services.some((s) => s.type === INFO && s.characteristics.some((c) => c.type === SERIAL && c.value === serial)));
}

/** "aid.iid" of a characteristic of a device's service, or undefined. */
export function characteristicId(db: AccessoryDb, serial: string, service: string, characteristic: string, nth = 0): string | undefined {
  const accessory = accessoryBySerial(db, serial);
  const svc = accessory?.services.filter((s) => s.type === serviceUuid(service))[nth];
  const ch = svc?.characteristics.find((c) => c.type === characteristicUuid(characteristic));
  return accessory && ch ? `${accessory.aid}.${ch.iid}` : undefined;
}

export function characteristicValue(db: AccessoryDb, serial: string, service: string, characteristic: string): unknown {
  const id = characteristicId(db, serial, service, characteristic);
  if (!id) return undefined;
  const [aid, iid] = id.split('.').map(Number);
  return db.accessories
    .find((a) => a.aid === aid)!
    .services.flatMap((s) => s.characteristics)
    .find((c) => c.iid === iid)!.value;
}

/** Every (aid, service iid, characteristic iid) with its type: what must not change across restarts. */
export function idMap(db: AccessoryDb): string[] {
  return db.accessories.flatMap((a) => a.services.flatMap((s) => s.characteristics.map((c) => `${a.aid}/${s.iid}:${s.type}/${c.iid}:${c.type}`))).sort();
}

/** HAP validity our bridge promises: one AccessoryInformation per accessory, unique iids, values within range. */
export function assertValidDatabase(db: AccessoryDb): void {
  const aids = new Set<number>();
  for (const accessory of db.accessories) {
    if (aids.has(accessory.aid)) throw new Error(`duplicate aid ${accessory.aid}`);
    aids.add(accessory.aid);
    const infos = accessory.services.filter((s) => s.type === INFO);
    if (infos.length !== 1) throw new Error(`accessory ${accessory.aid} has ${infos.length} AccessoryInformation services`);
    const iids = new Set<number>();
    for (const service of accessory.services) {
      for (const id of [service.iid, ...service.characteristics.map((c) => c.iid!)]) {
        if (iids.has(id)) throw new Error(`accessory ${accessory.aid} reuses iid ${id}`);
        iids.add(id);
      }
      for (const c of service.characteristics) {
        if (typeof c.value !== 'number') continue;
        if ((c.minValue !== undefined && c.value < c.minValue) || (c.maxValue !== undefined && c.value > c.maxValue)) {
          throw new Error(`accessory ${accessory.aid} iid ${c.iid}: value ${c.value} outside ${c.minValue}..${c.maxValue}`);
        }
      }
    }
  }
}
