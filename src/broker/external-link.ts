/** The hub as a client of an external broker (e.g. Mosquitto), over MQTT.js. */
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import type { InboundMessage } from '../core/ingest.js';
import type { Logger } from '../log/logger.js';
import type { HubLink, PublishOptions } from './hub-link.js';
import { matches } from './topic-filter.js';

const MIN_RECONNECT_MS = 1000;
const MAX_RECONNECT_MS = 30_000;
/** Publishes kept while the broker is away; beyond that the oldest news is stale anyway. */
const MAX_QUEUED = 1000;

export interface ExternalLinkOptions {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
}

export async function connectExternal(options: ExternalLinkOptions, log: Logger): Promise<HubLink> {
  const url = new URL(options.url);
  const username = options.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = options.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  url.username = '';
  url.password = '';
  const address = url.toString().replace(/\/$/, '');
  const client = mqtt.connect(address, {
    clientId: username ?? `mqttkit-hub-${randomBytes(4).toString('hex')}`,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    protocolVersion: 4,
    reconnectPeriod: MIN_RECONNECT_MS,
    connectTimeout: 10_000,
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      client.end(true);
      reject(new Error(`cannot connect to the MQTT broker at ${address}: ${error.message}; check --mqtt-url and the broker's credentials`));
    };
    client.once('connect', () => {
      client.off('error', onError);
      resolve();
    });
    client.once('error', onError);
  });
  // From here on, MQTT.js reconnects by itself (and re-subscribes). Its interval is fixed, so we
  // double it after each failed attempt (up to 30 s) and reset it once connected.
  client.on('offline', () => log.warn({ broker: address }, 'lost the MQTT broker; reconnecting'));
  client.on('close', () => {
    client.options.reconnectPeriod = Math.min(MAX_RECONNECT_MS, (client.options.reconnectPeriod ?? MIN_RECONNECT_MS) * 2);
  });
  client.on('reconnect', () => log.debug({ broker: address, nextInMs: client.options.reconnectPeriod }, 'reconnecting to the MQTT broker'));
  client.on('connect', () => {
    client.options.reconnectPeriod = MIN_RECONNECT_MS;
    log.info({ broker: address }, 'connected to the MQTT broker');
  });
  client.on('error', (error) => log.error({ broker: address, err: error.message }, 'MQTT broker connection error'));
  return new ExternalLink(client, address, log);
}

class ExternalLink implements HubLink {
  readonly #handlers: Array<[string, (message: InboundMessage) => void]> = [];
  #queued = 0;
  #dropping = false;

  constructor(
    private readonly client: MqttClient,
    readonly address: string,
    private readonly log: Logger,
  ) {
    client.on('message', (topic, payload, packet) => {
      // A message with the retain flag set arrives only as a replay on subscribe (MQTT 3.1.1 clears it on live delivery).
      const message = { topic, payload, live: !packet.retain };
      for (const [filter, handler] of this.#handlers) if (matches(filter, topic)) handler(message);
    });
  }

  async subscribe(filter: string, handler: (message: InboundMessage) => void): Promise<void> {
    this.#handlers.push([filter, handler]);
    await this.client.subscribeAsync(filter, { qos: 1 });
  }

  async unsubscribe(filter: string, handler: (message: InboundMessage) => void): Promise<void> {
    const at = this.#handlers.findIndex(([f, h]) => f === filter && h === handler);
    if (at < 0) return;
    this.#handlers.splice(at, 1);
    // The broker's subscription is per filter: kept while another handler still listens to it.
    if (!this.#handlers.some(([f]) => f === filter)) await this.client.unsubscribeAsync(filter);
  }

  async publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void> {
    const queued = !this.client.connected;
    if (queued) {
      if (this.#queued >= MAX_QUEUED) {
        if (!this.#dropping) this.log.warn({ broker: this.address, queued: this.#queued }, 'broker away too long: dropping further messages until it is back');
        this.#dropping = true;
        return;
      }
      this.#queued++;
    }
    try {
      await this.client.publishAsync(topic, payload, options);
    } finally {
      if (queued && --this.#queued === 0) this.#dropping = false;
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}
