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

const REQUEST_TOPIC = '$CONTROL/dynamic-security/v1';
const RESPONSE_TOPIC = `${REQUEST_TOPIC}/response`;

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
/** One answer; one that does not fit is skipped (its request times out, naming the command), the others still count. */
const dynsecResponse = z.looseObject({ correlationData: z.string(), error: z.string().optional(), data: z.unknown().optional() });

export class DynsecClient {
  readonly #pending = new Map<string, (response: { error?: string; data?: unknown }) => void>();

  private constructor(private readonly client: MqttClient) {
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
    let client: MqttClient;
    try {
      client = await mqtt.connectAsync(url, {
        clientId: `${username}-ctl-${randomUUID().slice(0, 8)}`,
        username,
        password,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      });
    } catch (error) {
      // The URL may carry a login (mqtt://user:pass@host): the message reaches the hub log, never the password.
      throw new Error(`cannot reach the broker at ${redactUrl(url)} as ${username}: ${(error as Error).message}`);
    }
    const granted = await client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 });
    if (granted[0]?.qos === 128) {
      client.end(true);
      throw new Error(`${username} may not use Mosquitto's dynamic-security API: generate the broker config with 'mqttkit mosquitto-config'`);
    }
    return new DynsecClient(client);
  }

  async run(command: Command, tolerate: string[] = []): Promise<unknown> {
    const correlationData = randomUUID();
    const response = new Promise<{ error?: string; data?: unknown }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(correlationData);
        reject(new Error(`the broker did not answer ${command.command} (is the dynamic-security plugin loaded?)`));
      }, 5000);
      this.#pending.set(correlationData, (r) => {
        clearTimeout(timer);
        this.#pending.delete(correlationData);
        resolve(r);
      });
    });
    await this.client.publishAsync(REQUEST_TOPIC, JSON.stringify({ commands: [{ ...command, correlationData }] }), { qos: 1 });
    const { error, data } = await response;
    if (error && !tolerate.some((t) => error.includes(t))) throw new Error(`Mosquitto refused ${command.command}: ${error}`);
    return data;
  }

  /** Creates (or re-creates) a device's role and client with the given password. */
  async provisionDevice(id: string, password: string): Promise<void> {
    await this.removeDevice(id);
    await this.run({ command: 'createRole', rolename: deviceRoleName(id), acls: deviceAcls(id) });
    await this.run({ command: 'createClient', username: id, password, clientid: id, roles: [{ rolename: deviceRoleName(id) }] });
  }

  async setPassword(id: string, password: string): Promise<void> {
    await this.run({ command: 'setClientPassword', username: id, password });
  }

  async removeDevice(id: string): Promise<void> {
    await this.run({ command: 'deleteClient', username: id }, ['not found']);
    await this.run({ command: 'deleteRole', rolename: deviceRoleName(id) }, ['not found']);
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}
