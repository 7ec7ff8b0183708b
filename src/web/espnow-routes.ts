/**
 * ESP-NOW pairing from the dashboard and `mqttkit espnow` (docs/api.md, docs/security.md "ESP-NOW
 * peripherals"): pairing records which gateway speaks for a peripheral [E-10] and opens a pairing
 * window on the gateway with a one-time code [E-7], shown in this answer only (it goes to the
 * peripheral over USB). Like the other credential-making routes, it is not for an API token ([A-4]).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { PeripheralRights } from '../broker/mosquitto/espnow-acls.js';
import type { DeviceRegistry } from '../core/registry.js';
import { commandRefusal } from '../ota/command-reach.js';
import type { DeviceChannel } from '../ota/device-channel.js';
import { mqttAccountNameProblem } from '../security/access-policy.js';
import type { AccountStore } from '../store/account-store.js';
import type { EspNowPairings } from '../store/espnow-pairings.js';
import { refuseApiToken } from './admin-routes.js';
import { HttpError } from './http-error.js';

export interface EspNowDeps {
  pairings: EspNowPairings;
  accounts: AccountStore;
  registry: DeviceRegistry;
  channel: DeviceChannel;
  /** Publishes a command to cmnd/<id>/OTA (not through the channel: its debug log would show the code). */
  command: (device: string, text: string) => Promise<void>;
  /** Drops a client's connection: a gateway then subscribes again with what it may now. */
  disconnect: (id: string) => void;
  externalBroker?: boolean;
  /** With an external broker: the gateway's rights for a peripheral, given and taken at Mosquitto. */
  brokerRights?: PeripheralRights | undefined;
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const id = z.string().min(1, 'required').regex(ID, 'not a device id (1-64 letters, digits, _ or -)');
const pairBody = z.object({
  gateway: id,
  peripheral: z.string().min(1, 'required').max(64, 'at most 64 characters'),
  windowS: z.number().int().min(10).max(3600).default(300),
});
const status = (code: number, message: string) => new HttpError(code, message);
/** How long the gateway has to confirm that its window is open. */
const ANSWER_MS = 10_000;

/**
 * [E-14] Pairing and unpairing one peripheral run one at a time: two requests pairing it to two gateways
 * at once would both pass the check and both gateways would hold a key for it.
 */
function onePerPeripheral(): <T>(peripheral: string, work: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<unknown>>();
  return (peripheral, work) => {
    const run = (tails.get(peripheral) ?? Promise.resolve()).then(work, work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    tails.set(peripheral, tail);
    void tail.then(() => {
      if (tails.get(peripheral) === tail) tails.delete(peripheral);
    });
    return run;
  };
}

export function espnowRoutes(app: FastifyInstance, d: EspNowDeps): void {
  const serialised = onePerPeripheral();
  app.get('/api/espnow/pairings', async () => d.pairings.list());

  app.post('/api/espnow/pairings', async (request) => {
    refuseApiToken(request);
    const body = pairBody.parse(request.body);
    const { gateway, peripheral, windowS } = body;
    const problem = mqttAccountNameProblem(peripheral);
    if (problem) throw status(400, `peripheral id: ${problem}`);
    if (d.externalBroker && !d.brokerRights) throw status(409, 'the external broker cannot be given the gateway rights (docs/security.md §8)');
    if (peripheral === gateway) throw status(400, 'a gateway cannot be its own peripheral');
    return serialised(peripheral, () => pair(gateway, peripheral, windowS));
  });

  const pair = async (gateway: string, peripheral: string, windowS: number) => {
    const account = await d.accounts.get(gateway);
    if (account?.role !== 'device' || account.status !== 'active') throw status(404, `no device account ${gateway} (see 'mqttkit device list')`);
    if (await d.accounts.get(peripheral))
      throw status(
        409,
        `${peripheral} has an MQTT account: a peripheral speaks only through its gateway; remove the account first ('mqttkit device remove ${peripheral}') or choose another id`,
      );
    // With Mosquitto the logins are its clients: the gateway must be one, the peripheral must not [E-10].
    if (d.brokerRights) {
      let gatewayThere: boolean;
      let peripheralThere: boolean;
      try {
        [gatewayThere, peripheralThere] = [await d.brokerRights.hasClient(gateway), await d.brokerRights.hasClient(peripheral)];
      } catch (error) {
        throw status(502, `cannot ask Mosquitto who may log in: ${(error as Error).message}`);
      }
      if (!gatewayThere) throw status(404, `Mosquitto has no client ${gateway}: add the gateway with 'mqttkit device add ${gateway}'`);
      if (peripheralThere)
        throw status(
          409,
          `${peripheral} is a Mosquitto client: a peripheral speaks only through its gateway; remove it first ('mqttkit device remove ${peripheral}') or choose another id`,
        );
    }
    const existing = d.pairings.get(peripheral);
    // A pairing whose gateway account is gone (or registered anew) no longer counts [E-10].
    const live = existing && (await d.accounts.get(existing.gateway))?.createdAt === existing.gatewaySince;
    if (live && existing.gateway !== gateway)
      throw status(409, `${peripheral} is paired to gateway ${existing.gateway}: unpair it first ('mqttkit espnow unpair ${peripheral}')`);
    // [P-23] the window opens through a command: the gateway must hear it now
    const refusal = commandRefusal(d.registry.get(gateway)) ?? (d.registry.get(gateway) ? undefined : `${gateway} has not been seen by the hub yet: start it`);
    if (refusal) throw status(409, refusal);
    const code = randomBytes(16).toString('hex');
    await d.pairings.pair(peripheral, gateway, account.createdAt);
    // A login under the peripheral's id that registered while this was checked came first (one still being
    // checked is refused by the broker now that the id is paired [E-10]).
    if (await d.accounts.get(peripheral)) {
      if (!live) await d.pairings.unpair(peripheral);
      throw status(409, `${peripheral} registered an MQTT account just now: remove it first ('mqttkit device remove ${peripheral}') or choose another id`);
    }
    const opened = d.channel.next(gateway, 'Log', ANSWER_MS, (line) => line.startsWith(`espnow: pairing window open for ${peripheral} `));
    try {
      await d.command(gateway, `espnow_pair ${peripheral} ${code} ${windowS}`);
      await opened.answer;
    } catch (error) {
      opened.cancel();
      if (!live) await d.pairings.unpair(peripheral);
      throw status(504, `${(error as Error).message}: is ${gateway} running mqttkit.espnow.Gateway?`);
    }
    // Mosquitto: the rights follow the open window (the gateway subscribes to the peripheral's topics once paired).
    try {
      await d.brokerRights?.grant(gateway, peripheral);
    } catch (error) {
      if (!live) await d.pairings.unpair(peripheral);
      throw status(502, `Mosquitto did not give ${gateway} the rights for ${peripheral}: ${(error as Error).message}`);
    }
    return { gateway, peripheral, windowS, code };
  };

  app.delete<{ Params: { peripheral: string } }>('/api/espnow/pairings/:peripheral', async (request) => {
    refuseApiToken(request);
    const peripheral = id.parse(request.params.peripheral);
    return serialised(peripheral, () => unpair(peripheral));
  });

  const unpair = async (peripheral: string) => {
    const paired = d.pairings.get(peripheral);
    if (!paired) throw status(404, `${peripheral} is not paired`);
    try {
      await d.brokerRights?.revoke(paired.gateway, peripheral);
    } catch (error) {
      throw status(
        502,
        `Mosquitto did not finish taking ${paired.gateway}'s rights for ${peripheral} (${(error as Error).message}): the pairing stays; try again`,
      );
    }
    // [E-13] Revoked before the gateway is told: from here the broker neither takes its publishes for the
    // peripheral nor delivers it the peripheral's writes (checked at each delivery), while we wait.
    const pairing = (await d.pairings.unpair(peripheral)) ?? paired;
    // [E-14] The peripheral's device goes with it (out of HomeKit, its retained topics cleared, as
    // `mqttkit device remove`): its id is free again, and whoever registers it next starts afresh.
    d.registry.remove(peripheral, `unpaired from ESP-NOW gateway ${pairing.gateway}`);
    // The gateway forgets the key if it hears this, and its connection is dropped so that its
    // subscriptions are made again.
    let told = false;
    if (!commandRefusal(d.registry.get(pairing.gateway))) {
      const answer = d.channel.next(pairing.gateway, 'Log', ANSWER_MS, (line) => line.startsWith(`espnow: ${peripheral} `));
      try {
        await d.command(pairing.gateway, `espnow_unpair ${peripheral}`);
        await answer.answer;
        told = true;
      } catch {
        answer.cancel();
      }
    }
    d.disconnect(pairing.gateway);
    return { unpaired: peripheral, gateway: pairing.gateway, gatewayForgot: told };
  };
}
