/**
 * The embedded broker: aedes on a TCP listener. The hub talks to it in-process (AedesLink), so an
 * MQTT message reaches HomeKit without a network hop.
 */
import { createServer, type Server } from 'node:net';
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket } from 'aedes';
import type { InboundMessage } from '../core/ingest.js';
import type { Logger } from '../log/logger.js';
import { OncePerKey } from '../log/once.js';
import type { HubLink, PublishOptions } from './hub-link.js';
import { InflowLimiter } from './inflow-limiter.js';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** Largest PUBLISH payload a client may send. */
  maxPayloadBytes?: number;
  /** Sustained messages a second one client may publish, and the burst above it. */
  messagesPerSecond?: number;
  burst?: number;
}

export class EmbeddedBroker {
  private constructor(
    readonly aedes: Aedes,
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(options: EmbeddedBrokerOptions, log: Logger): Promise<EmbeddedBroker> {
    const maxPayload = options.maxPayloadBytes ?? 64 * 1024;
    const limiter = new InflowLimiter(options.messagesPerSecond ?? 100, options.burst ?? 500);
    const once = new OncePerKey();
    const aedes = await Aedes.createBroker({
      // A publish refused here closes the client: the remedy for a flood or an oversized message.
      authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void) {
        if (!client) return callback(null);
        const size = packet.payload?.length ?? 0;
        if (size > maxPayload) {
          if (once.first(`size:${client.id}`)) log.warn({ client: client.id, topic: packet.topic, bytes: size }, `payload over ${maxPayload} bytes: disconnecting the client`);
          return callback(new Error('payload too large'));
        }
        if (!limiter.allow(client.id)) {
          if (once.first(`rate:${client.id}`)) log.warn({ client: client.id }, 'client publishes faster than the hub admits (flood): disconnecting it');
          return callback(new Error('rate limit'));
        }
        callback(null);
      },
    });
    aedes.on('clientDisconnect', (client: Client) => limiter.forget(client.id));
    aedes.on('clientError', (client: Client, error: Error) => log.debug({ client: client.id, err: error.message }, 'MQTT client error'));
    aedes.on('connectionError', (client: Client, error: Error) => log.debug({ client: client?.id, err: error.message }, 'MQTT connection error'));

    const server = createServer(aedes.handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        aedes.close();
        reject(
          new Error(
            error.code === 'EADDRINUSE'
              ? `MQTT port ${options.port} on ${options.host} is in use (another broker, e.g. Mosquitto?): stop it, choose another --mqtt-port, or use it with --mqtt-url`
              : `cannot listen for MQTT on ${options.host}:${options.port}: ${error.message}`,
          ),
        );
      });
      server.listen(options.port, options.host, () => resolve());
    });
    server.on('error', (error) => log.error({ err: error }, 'MQTT listener error'));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    return new EmbeddedBroker(aedes, server, options.host, port);
  }

  link(): HubLink {
    return new AedesLink(this.aedes, `mqtt://${this.host}:${this.port}`);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The hub inside the broker: it sees every publish live (aedes does not replay retained messages to it). */
class AedesLink implements HubLink {
  readonly #subscriptions: Array<[string, (packet: AedesPublishPacket, done: () => void) => void]> = [];

  constructor(
    private readonly aedes: Aedes,
    readonly address: string,
  ) {}

  subscribe(filter: string, handler: (message: InboundMessage) => void): Promise<void> {
    const deliver = (packet: AedesPublishPacket, done: () => void) => {
      try {
        handler({ topic: packet.topic, payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), live: true });
      } finally {
        done();
      }
    };
    this.#subscriptions.push([filter, deliver]);
    return new Promise((resolve) => this.aedes.subscribe(filter, deliver, () => resolve()));
  }

  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void> {
    const packet: PublishPacket = { cmd: 'publish', topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, qos: options.qos, retain: options.retain, dup: false };
    return new Promise((resolve, reject) => this.aedes.publish(packet, (error) => (error ? reject(error) : resolve())));
  }

  async close(): Promise<void> {
    for (const [filter, deliver] of this.#subscriptions.splice(0)) {
      await new Promise<void>((resolve) => this.aedes.unsubscribe(filter, deliver, () => resolve()));
    }
  }
}
