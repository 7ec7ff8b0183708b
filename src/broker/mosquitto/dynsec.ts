/**
 * Mosquitto's dynamic-security plugin, driven over `$CONTROL/dynamic-security/v1` (~1 ms a request).
 * Stock Mosquitto cannot register a device on first connect, so devices are provisioned here: one
 * client and one role per device (2.0.x has no `%u` in its ACLs), with the rights of access-policy.ts.
 */
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { z } from 'zod';
import { parseJson } from '../../core/json.js';
import { devicePublishSpace, deviceSubscribeSpace } from '../../security/access-policy.js';
import { redactUrl } from '../../store/engine/sql-engine.js';
import { ADMIN_ACLS, ADMIN_ROLE } from './mosquitto-config.js';

const REQUEST_TOPIC = '$CONTROL/dynamic-security/v1';
const RESPONSE_TOPIC = `${REQUEST_TOPIC}/response`;
/**
 * How long one request may take, from sending it to Mosquitto's answer (it answers in ~1 ms). A QoS 1
 * publish on a connection Mosquitto dropped never completes by itself: the deadline covers it too.
 */
const REQUEST_MS = 5000;

export interface DynsecAcl {
  acltype: 'publishClientSend' | 'publishClientReceive' | 'subscribePattern' | 'subscribeLiteral' | 'unsubscribePattern';
  topic: string;
  allow: boolean;
  priority?: number;
}

type Command = Record<string, unknown> & { command: string };

export const deviceRoleName = (id: string) => `mqttkit-device-${id}`;

export function deviceAcls(id: string): DynsecAcl[] {
  return [
    ...devicePublishSpace(id).map((topic) => ({ acltype: 'publishClientSend' as const, topic, allow: true })),
    ...deviceSubscribeSpace(id).flatMap((topic) => [
      { acltype: 'subscribePattern' as const, topic, allow: true },
      { acltype: 'publishClientReceive' as const, topic, allow: true },
    ]),
  ];
}

/** `$CONTROL/dynamic-security/v1/response`: Mosquitto's answers, matched to requests by correlationData. */
const dynsecResponses = z.looseObject({
  responses: z.array(z.unknown()).optional(),
});
/** getClient's answer, as far as telling a device client mqttkit made from anyone else's. */
const clientShape = z.looseObject({
  client: z.looseObject({
    clientid: z.string().optional(),
    roles: z.array(z.looseObject({ rolename: z.string() })).default([]),
    groups: z.array(z.unknown()).default([]),
  }),
});
/** One answer; one that does not fit is skipped (its request times out, naming the command), the others still count. */
const dynsecResponse = z.looseObject({ correlationData: z.string(), error: z.string().optional(), data: z.unknown().optional() });

export class DynsecClient {
  readonly #pending = new Map<string, (response: { error?: string; data?: unknown }) => void>();
  /** Set when the connection to Mosquitto is gone: every request then fails at once. */
  #lost: string | undefined;
  readonly #onLost = new Set<(why: string) => void>();

  private constructor(private readonly client: MqttClient) {
    const lost = (why: string) => {
      this.#lost ??= why;
      for (const fail of this.#onLost) fail(this.#lost);
    };
    client.on('close', () => lost('the connection to the broker closed'));
    client.on('error', (error) => lost(`the connection to the broker failed: ${error.message}`));
    client.on('message', (_topic, payload) => {
      // Not ours to answer (another client's request, a broker of another version): left for its timeout.
      const parsed = parseJson(payload.toString(), dynsecResponses);
      if (!parsed.ok) return;
      for (const item of parsed.value.responses ?? []) {
        const one = dynsecResponse.safeParse(item);
        if (!one.success) continue;
        const response = one.data;
        const resolve = this.#pending.get(response.correlationData);
        if (resolve) resolve(response);
      }
    });
  }

  static async connect(url: string, username: string, password: string): Promise<DynsecClient> {
    const client = mqtt.connect(url, {
      clientId: `${username}-ctl-${randomUUID().slice(0, 8)}`,
      username,
      password,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: REQUEST_MS,
    });
    client.on('error', () => {}); // reported by the login below or the request that meets it, never unhandled
    // Not mqtt.js's connectAsync: a peer that accepts TCP and closes before its CONNACK left it pending for good.
    const loggedIn = new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('the connection closed before the broker answered the login')));
    });
    try {
      await withDeadline(loggedIn, 'logging in');
    } catch (error) {
      client.end(true);
      // The URL may carry a login (mqtt://user:pass@host): the message reaches the hub log, never the password.
      throw new Error(`cannot reach the broker at ${redactUrl(url)} as ${username}: ${(error as Error).message}`);
    }
    let granted: Awaited<ReturnType<MqttClient['subscribeAsync']>>;
    try {
      granted = await withDeadline(client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 }), `subscribing to Mosquitto's answers at ${redactUrl(url)}`);
    } catch (error) {
      client.end(true);
      throw error;
    }
    if (granted[0]?.qos === 128) {
      client.end(true);
      throw new Error(`${username} may not use Mosquitto's dynamic-security API: generate the broker config with 'mqttkit mosquitto-config'`);
    }
    return new DynsecClient(client);
  }

  /**
   * One request. A refusal (Mosquitto answered with an error) is a DynsecRefusal: nothing was changed. Any
   * other failure (no answer in time, the connection gone) leaves it unknown whether the change was made.
   */
  async run(command: Command, tolerate: string[] = []): Promise<unknown> {
    if (this.#lost) throw new Error(`cannot send ${command.command}: ${this.#lost}`);
    const correlationData = randomUUID();
    let fail: (why: string) => void = () => {};
    let timer: NodeJS.Timeout | undefined;
    const response = new Promise<{ error?: string; data?: unknown }>((resolve, reject) => {
      fail = (why) => reject(new Error(`${command.command} got no answer: ${why}`));
      timer = setTimeout(() => fail(`the broker did not answer within ${REQUEST_MS / 1000} s (is the dynamic-security plugin loaded?)`), REQUEST_MS);
      this.#onLost.add(fail);
      this.#pending.set(correlationData, resolve);
    });
    try {
      // Not awaited on its own: on a dropped connection it would wait forever; the answer is what counts.
      this.client.publish(REQUEST_TOPIC, JSON.stringify({ commands: [{ ...command, correlationData }] }), { qos: 1 }, (error) => {
        if (error) fail(`sending it failed: ${error.message}`);
      });
      const { error, data } = await response;
      if (error && !tolerate.some((t) => error.includes(t))) throw new DynsecRefusal(`Mosquitto refused ${command.command}: ${error}`);
      return data;
    } finally {
      clearTimeout(timer);
      this.#onLost.delete(fail);
      this.#pending.delete(correlationData);
    }
  }

  /** Creates (or re-creates) a device's role and client with the given password. */
  async provisionDevice(id: string, password: string): Promise<void> {
    await this.removeDevice(id);
    await this.run({ command: 'createRole', rolename: deviceRoleName(id), acls: deviceAcls(id) });
    await this.run({ command: 'createClient', username: id, password, clientid: id, roles: [{ rolename: deviceRoleName(id) }] });
  }

  /** An MQTT admin: every topic, not Mosquitto's own API (its role is made if this Mosquitto was set up before it existed). */
  async createAdmin(name: string, password: string): Promise<void> {
    await this.run({ command: 'createRole', rolename: ADMIN_ROLE, acls: ADMIN_ACLS }, ['already exists']);
    await this.run({ command: 'createClient', username: name, password, roles: [{ rolename: ADMIN_ROLE }] });
  }

  /**
   * Whether Mosquitto has a client `id`, and if so whether it is shaped exactly as provisionDevice makes a
   * device's (client id = username, the device's own role and nothing else): then it is mqttkit's, e.g.
   * left by a `device add` interrupted before it stored the account. Any other is somebody else's.
   */
  async deviceClient(id: string): Promise<'none' | 'mqttkit-device' | 'other'> {
    const answer = await this.run({ command: 'getClient', username: id }, ['not found']);
    const parsed = clientShape.safeParse(answer);
    if (!parsed.success) return typeof answer === 'object' && answer !== null && 'client' in answer ? 'other' : 'none';
    const { clientid, roles, groups } = parsed.data.client;
    const ours = clientid === id && roles.length === 1 && roles[0]!.rolename === deviceRoleName(id) && groups.length === 0;
    return ours ? 'mqttkit-device' : 'other';
  }

  async setPassword(id: string, password: string): Promise<void> {
    await this.run({ command: 'setClientPassword', username: id, password });
  }

  async removeDevice(id: string): Promise<void> {
    await this.run({ command: 'deleteClient', username: id }, ['not found']);
    await this.run({ command: 'deleteRole', rolename: deviceRoleName(id) }, ['not found']);
  }

  /** Closes the connection; one that hangs (a broker gone silent) is cut after a moment. */
  async close(): Promise<void> {
    if (this.#lost) return void this.client.end(true);
    await withDeadline(this.client.endAsync(), 'closing the connection to Mosquitto').catch(() => this.client.end(true));
  }
}

/** Mosquitto answered a request with an error: the request changed nothing. */
export class DynsecRefusal extends Error {
  override name = 'DynsecRefusal';
}

async function withDeadline<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${REQUEST_MS / 1000} s`)), REQUEST_MS);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
