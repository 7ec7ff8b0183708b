/**
 * [E-10] An ESP-NOW gateway speaks for the peripherals paired to it, and for no one else: it may publish
 * and subscribe in each one's device space (access-policy.ts, [S-3]) as if it were that peripheral, so
 * only it receives their writes. A peripheral never holds an MQTT account of its own: a login under a
 * paired peripheral's id is refused, so nobody else can take its topics either. The pairing names the
 * gateway's account as created at that time: the same name registered again is another gateway.
 */
import type { AccountStore } from '../store/account-store.js';
import type { EspNowPairings } from '../store/espnow-pairings.js';
import { mayPublish, maySubscribe } from './access-policy.js';

export class EspNowAccess {
  constructor(
    private readonly pairings: EspNowPairings,
    private readonly accounts: AccountStore,
  ) {}

  /** The peripherals device `gateway` speaks for now (none unless its account is the one paired). */
  async speaksFor(gateway: string): Promise<string[]> {
    // Most devices are no gateway: answered from memory, without a store query.
    if (!this.pairings.hasGateway(gateway)) return [];
    const account = await this.accounts.get(gateway);
    if (account?.role !== 'device' || account.status !== 'active') return [];
    return this.pairings.peripheralsOf(gateway, account.createdAt);
  }

  async mayPublish(gateway: string, topic: string): Promise<boolean> {
    return (await this.speaksFor(gateway)).some((peripheral) => mayPublish('device', peripheral, topic));
  }

  async maySubscribe(gateway: string, filter: string): Promise<boolean> {
    return (await this.speaksFor(gateway)).some((peripheral) => maySubscribe('device', peripheral, filter));
  }

  /**
   * [E-13] At each delivery: is `topic` in the space of a peripheral paired to `gateway` now? From
   * memory, by name: the hub removes a gateway's pairings with its account, and a hub that starts
   * drops pairings whose gateway account is another one before the broker listens (hub.ts).
   */
  mayReceive(gateway: string, topic: string): boolean {
    // The peripheral's id is a topic's second level (HomeKit/<id>/…, cmnd/<id>/…) or its first (<id>/OTA).
    const [first, second] = topic.split('/', 2);
    return [second, first].some((id) => id !== undefined && this.pairings.get(id)?.gateway === gateway && maySubscribe('device', id, topic));
  }

  /** Why an MQTT login under `id` is refused, or undefined. */
  loginRefusal(id: string | undefined): string | undefined {
    const pairing = id === undefined ? undefined : this.pairings.get(id);
    return pairing ? `${id} is an ESP-NOW peripheral of gateway ${pairing.gateway}: it has no MQTT login of its own` : undefined;
  }
}
