/**
 * The embedded broker: aedes on a TCP listener. The hub talks to it in-process (AedesLink), so an
 * MQTT message reaches HomeKit without a network hop.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type ConnectPacket, type PublishPacket, type Subscription } from 'aedes';
import { writeToStream } from 'mqtt-packet';
import type { InboundMessage } from '../core/ingest.js';
import type { Logger } from '../log/logger.js';
import { OncePerKey } from '../log/once.js';
import { type AccountRole, mayPublish, maySubscribe } from '../security/access-policy.js';
import { NOT_AUTHORIZED, type Registration, SERVER_UNAVAILABLE } from '../security/registration.js';
import { DeviceListening } from './device-listening.js';
import type { HubLink, PublishOptions } from './hub-link.js';
import { InflowLimiter } from './inflow-limiter.js';
import { LoginsInFlight } from './logins-in-flight.js';
import { describeViolation, guardSocket, MAX_PAYLOAD_BYTES, type PacketViolation, publishLimit } from './packet-guard.js';

/**
 * aedes can only refuse a publish by closing the client. A device that publishes outside its space
 * is usually misconfigured, not hostile, so its message is sent here instead: a `$` topic, which no
 * wildcard subscription matches and no device may subscribe to. [S-4]
 */
const DISCARD_TOPIC = '$mqttkit/discarded';

/**
 * [S-4] Largest CONNECT: client id and username (64 each), a password, a last will. Read before anyone
 * is authenticated, so it stays small.
 */
const MAX_CONNECT_BYTES = 8 * 1024;
// mqtt-packet (aedes' writer) fills a cache of 65,536 two-byte Buffers for packet ids at its first
// packet: ~7 MB of heap, a tenth of the hub's, to save one 2-byte allocation per QoS 1 packet (issue 13).
writeToStream.cacheNumbers = false;

/** [S-4] A client that has not sent its CONNECT by then is cut off (aedes' default is 30 s). */
const CONNECT_TIMEOUT_MS = 5000;
/**
 * A TLS client that has not finished its handshake by then is cut off (Node's default is 120 s). An
 * ESP8266 needs seconds for an RSA handshake, so this is generous.
 */
const TLS_HANDSHAKE_TIMEOUT_MS = 30_000;
/**
 * aedes publishes `$SYS/<id>/heartbeat` this often (default: every minute) and looks for the wills of
 * dead brokers every four of them: both serve a cluster of brokers sharing a persistence, which the
 * one embedded broker with its in-memory persistence is not. Once a day keeps an idle hub asleep
 * (issue 13); aedes' ratio between the two keeps our own clients' wills untouched, and 4 × this stays
 * under setInterval's limit of 2^31 - 1 ms.
 */
const AEDES_HEARTBEAT_MS = 86_400_000;

export interface TlsListenerOptions {
  port: number;
  certFile: string;
  keyFile: string;
}

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** Largest PUBLISH payload a client may send. */
  maxPayloadBytes?: number;
  /** Sustained messages a second one client may publish, and the burst above it. */
  messagesPerSecond?: number;
  burst?: number;
  /** Who may connect; every client must authenticate. */
  registration: Registration;
  /** How long a new connection may take to send its CONNECT. */
  connectTimeoutMs?: number;
  tls?: TlsListenerOptions | undefined;
  /** A device's own connection closed (clean DISCONNECT included); admins and the hub itself are no devices. */
  onDeviceGone?: (deviceId: string) => void;
  /** [E-10] ESP-NOW: whom a gateway speaks for (its paired peripherals' spaces), and ids that may not log in. */
  espnow?: {
    mayPublish(gateway: string, topic: string): Promise<boolean>;
    maySubscribe(gateway: string, filter: string): Promise<boolean>;
    /** [E-13] At each delivery, from memory: may `gateway` receive this peripheral topic now? */
    mayReceive(gateway: string, topic: string): boolean;
    loginRefusal(id: string | undefined): string | undefined;
  };
}

export class EmbeddedBroker {
  /** [P-21] Which devices are connected and what their connection subscribed to. */
  readonly listening = new DeviceListening();

  private constructor(
    readonly aedes: Aedes,
    private readonly servers: Server[],
    readonly host: string,
    readonly port: number,
    readonly tlsPort: number | undefined,
    private readonly inFlight: LoginsInFlight<Client>,
    private readonly silenced: WeakSet<Client>,
  ) {}

  static async start(options: EmbeddedBrokerOptions, log: Logger): Promise<EmbeddedBroker> {
    const maxPayload = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    const limiter = new InflowLimiter(options.messagesPerSecond ?? 100, options.burst ?? 500);
    const once = new OncePerKey();
    const roles = new WeakMap<Client, AccountRole>();
    // The CONNECT of each client, kept until it is authenticated: a device's session is made clean there [E-13].
    const connects = new WeakMap<Client, ConnectPacket>();
    const inFlight = new LoginsInFlight<Client>();
    // Connections the hub cut off for good (an account removed, a login revoked in flight): they leave no
    // last will, or a removed device's retained `$state offline` would bring it straight back.
    const silenced = new WeakSet<Client>();
    // Set once listening; no device can connect before (the listeners are not open yet).
    let broker: EmbeddedBroker | undefined;
    const aedes = await Aedes.createBroker({
      connectTimeout: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
      heartbeatInterval: AEDES_HEARTBEAT_MS,
      preConnect(client: Client, packet: ConnectPacket, callback: (error: Error | null, success: boolean) => void) {
        connects.set(client, packet);
        callback(null, true);
      },
      authenticate(
        client: Client,
        username: string | undefined,
        password: Buffer | undefined,
        done: (error: AuthenticateError | null, success: boolean | null) => void,
      ) {
        const address = remoteAddress(client);
        const refuse = (returnCode: number, reason: string) => {
          log.warn({ client: client.id, address }, `connection refused: ${reason}`);
          done(Object.assign(new Error(reason), { returnCode }) as AuthenticateError, false);
        };
        // [S-1] One device, one session: a second connection with the same client id would kick the first.
        // [P-0] client id = username = the device id
        if (username !== undefined && client.id !== username) return refuse(NOT_AUTHORIZED, `client id '${client.id}' must equal the username '${username}'`);
        // [E-10] a paired peripheral speaks only through its gateway
        const peripheral = options.espnow?.loginRefusal(client.id);
        if (peripheral) return refuse(NOT_AUTHORIZED, peripheral);
        const id = client.id;
        inFlight.begin(id, client);
        // Until aedes registers it ('client' below), or its socket closes before.
        client.conn.once('close', () => inFlight.end(id, client));
        options.registration
          .authenticate(username, password?.toString('utf8'), address, () => client.closed)
          .then(
            (outcome) => {
              if (!outcome.ok) {
                inFlight.end(id, client);
                return done(Object.assign(new Error(outcome.reason), { returnCode: outcome.returnCode }) as AuthenticateError, false);
              }
              if (inFlight.revoked(client)) {
                inFlight.end(id, client);
                return refuse(SERVER_UNAVAILABLE, `the account of ${id} was removed or reset while this login was checked: try again`);
              }
              // [E-10] paired as a peripheral while its login was checked
              const paired = options.espnow?.loginRefusal(id);
              if (paired) {
                inFlight.end(id, client);
                return refuse(NOT_AUTHORIZED, paired);
              }
              // Hung up meanwhile: aedes drops it without registering it ('client' never comes).
              if (client.closed) inFlight.end(id, client);
              // [S-3] a device's last will must lie in its own space too
              const will = (client as Client & { _will?: { topic: string } })._will;
              if (will && !mayPublish(outcome.role, client.id, will.topic))
                return refuse(NOT_AUTHORIZED, `last will topic ${will.topic} lies outside the device's own topics`);
              roles.set(client, outcome.role);
              // [E-13] A device's session is clean, whatever it asked: no subscription or queued message
              // outlives its connection, so rights taken away (an unpaired peripheral) do not live on in
              // a stored session. aedes reads the packet's flag after this answer (fetchSubs).
              const connect = connects.get(client);
              connects.delete(client);
              if (outcome.role === 'device' && connect && !connect.clean) {
                connect.clean = true;
                (client as { clean: boolean }).clean = true;
                if (once.first(`clean:${client.id}`)) log.info({ client: client.id }, 'device asked for a persistent session: given a clean one');
              }
              done(null, true);
            },
            (error: Error) => {
              inFlight.end(id, client);
              log.error({ client: client.id, err: error.message }, 'authentication failed');
              done(Object.assign(new Error('server error'), { returnCode: 3 }) as AuthenticateError, false);
            },
          );
      },
      authorizeSubscribe(client: Client, subscription: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void) {
        const role = roles.get(client) ?? 'device';
        if (maySubscribe(role, client.id, subscription.topic)) return callback(null, subscription);
        const refuse = () => {
          if (once.first(`sub:${client.id}:${subscription.topic}`))
            log.warn({ client: client.id, filter: subscription.topic }, "subscription outside the device's own topics refused");
          callback(null, null); // SUBACK 0x80
        };
        const espnow = options.espnow;
        if (role !== 'device' || !espnow) return refuse();
        // [E-10] a gateway also subscribes for the peripherals paired to it (aedes waits for this answer
        // before it reads the client's next packet: order is kept). A store error refuses.
        espnow.maySubscribe(client.id, subscription.topic).then(
          (ok) => (ok ? callback(null, subscription) : refuse()),
          (error: Error) => {
            log.error({ client: client.id, err: error.message }, 'ESP-NOW subscription check failed: refused');
            refuse();
          },
        );
      },
      // [E-13] Rights are checked again at each delivery: a subscription granted while a gateway was paired
      // gets nothing for the peripheral once unpaired (before its connection is dropped, and from any
      // queue). Synchronous, from memory: aedes calls this for every message to every subscriber.
      authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
        const role = roles.get(client);
        if (role !== 'device' || !options.espnow) return packet;
        if (maySubscribe('device', client.id, packet.topic)) return packet;
        return options.espnow.mayReceive(client.id, packet.topic) ? packet : null;
      },
      // A publish refused with an error closes the client: the remedy for a flood or an oversized message.
      authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void) {
        if (!client) return callback(null); // a will whose client is gone: checked when it connected
        if (silenced.has(client)) return callback(new Error('the hub closed this connection'));
        const size = packet.payload?.length ?? 0;
        if (size > maxPayload) {
          if (once.first(`size:${client.id}`))
            log.warn({ client: client.id, topic: packet.topic, bytes: size }, `payload over ${maxPayload} bytes: disconnecting the client`);
          return callback(new Error('payload too large'));
        }
        if (!limiter.allow(client.id)) {
          if (once.first(`rate:${client.id}`)) log.warn({ client: client.id }, 'client publishes faster than the hub admits (flood): disconnecting it');
          return callback(new Error('rate limit'));
        }
        const role = roles.get(client) ?? 'device';
        if (mayPublish(role, client.id, packet.topic)) return callback(null);
        const drop = () => {
          if (once.first(`pub:${client.id}:${packet.topic}`))
            log.warn({ client: client.id, topic: packet.topic }, "publish outside the device's own topics dropped");
          packet.topic = DISCARD_TOPIC;
          packet.retain = false;
          callback(null);
        };
        const espnow = options.espnow;
        if (role !== 'device' || !espnow) return drop();
        // [E-10] a gateway also publishes for the peripherals paired to it (aedes waits for this answer
        // before it reads the client's next packet: order is kept). A store error drops the message.
        espnow.mayPublish(client.id, packet.topic).then(
          (ok) => (ok ? callback(null) : drop()),
          (error: Error) => {
            log.error({ client: client.id, err: error.message }, 'ESP-NOW publish check failed: message dropped');
            drop();
          },
        );
      },
    });
    aedes.on('clientDisconnect', (client: Client) => {
      // The client's rate bucket stays (inflow-limiter.ts): reconnecting must not refill it.
      // [P-19] aedes emits this for every authenticated client's close; client id = device id [S-1].
      if (roles.get(client) === 'device') options.onDeviceGone?.(client.id);
      if (roles.get(client) === 'device') broker?.listening.closed(client.id, client);
    });
    // [P-21] A device listens once its current connection subscribed (granted: not 128) to its topics.
    aedes.on('client', (client: Client) => {
      inFlight.end(client.id, client);
      // Revoked or paired between its check and now (aedes registers it after storing its session and
      // will): a login never answered leaves no last word.
      const paired = options.espnow?.loginRefusal(client.id);
      if (inFlight.revoked(client) || paired) {
        log.warn({ client: client.id }, `connection closed: ${paired ?? 'its account was removed or reset while it logged in'}`);
        silenced.add(client);
        return client.close();
      }
      if (roles.get(client) === 'device') broker?.listening.opened(client.id, client);
    });
    aedes.on('subscribe', (subscriptions: Subscription[], client: Client) => {
      // aedes sets a refused subscription's qos to 128 (SUBACK failure), outside its QoS type.
      if (roles.get(client) === 'device')
        broker?.listening.subscribed(
          client.id,
          client,
          subscriptions.filter((s) => (s.qos as number) !== 128).map((s) => s.topic),
        );
    });
    aedes.on('unsubscribe', (filters: string[], client: Client) => {
      if (roles.get(client) === 'device') broker?.listening.unsubscribed(client.id, client, filters);
    });
    aedes.on('clientError', (client: Client, error: Error) => log.debug({ client: client.id, err: error.message }, 'MQTT client error'));
    aedes.on('connectionError', (client: Client, error: Error) => log.debug({ client: client?.id, err: error.message }, 'MQTT connection error'));

    // [S-4] Packet sizes are checked on the socket, before aedes buffers a packet (packet-guard.ts).
    const limits = { connectBytes: MAX_CONNECT_BYTES, packetBytes: publishLimit(maxPayload) };
    const accept = (socket: Socket) => {
      // Every MQTT packet is a small write that someone waits for (a /set, a command, an OTA trigger):
      // Nagle's algorithm held one back until the previous one was acknowledged, ~40 ms per OTA command.
      socket.setNoDelay(true);
      aedes.handle(socket);
      guardSocket(socket, limits, (violation: PacketViolation) => {
        const client = (socket as Socket & { client?: Client }).client?.id;
        const address = socket.remoteAddress;
        if (once.first(`guard:${client ?? address}:${violation.kind}`)) log.warn({ client, address }, describeViolation(violation, maxPayload));
      });
    };

    const servers: Server[] = [];
    try {
      const port = await listen(createServer(accept), options.host, options.port, '--mqtt-port', servers);
      let tlsPort: number | undefined;
      if (options.tls) {
        const tls = options.tls;
        const read = (file: string, what: string) => {
          try {
            return readFileSync(file);
          } catch (error) {
            throw new Error(`cannot read the TLS ${what} ${file}: ${(error as Error).message}`);
          }
        };
        const server = createTlsServer(
          { cert: read(tls.certFile, 'certificate (--tls-cert)'), key: read(tls.keyFile, 'key (--tls-key)'), handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS },
          accept,
        );
        server.on('tlsClientError', (error) => log.debug({ err: error.message }, 'TLS handshake failed'));
        tlsPort = await listen(server, options.host, tls.port, '--mqtts-port', servers);
      }
      for (const server of servers) server.on('error', (error) => log.error({ err: error }, 'MQTT listener error'));
      broker = new EmbeddedBroker(aedes, servers, options.host, port, tlsPort, inFlight, silenced);
      return broker;
    } catch (error) {
      for (const server of servers) server.close();
      aedes.close();
      throw error;
    }
  }

  /** The addresses of a connected client's socket: where it is, and where it reaches us. */
  route(clientId: string): { deviceAddress: string; hubAddress: string } | undefined {
    const clients = (this.aedes as unknown as { clients: Record<string, Client | undefined> }).clients;
    const conn = clients[clientId]?.conn as { remoteAddress?: string; localAddress?: string } | undefined;
    const strip = (a: string | undefined) => (a?.startsWith('::ffff:') ? a.slice(7) : a);
    const deviceAddress = strip(conn?.remoteAddress);
    const hubAddress = strip(conn?.localAddress);
    return deviceAddress && hubAddress ? { deviceAddress, hubAddress } : undefined;
  }

  /**
   * Closes a client's connection (its account was reset, its rights changed, a check asked for it): its
   * last will is published as for any dropped connection. `removed`: the account is gone, the connection
   * leaves no last will (a removed device's retained `$state` would make it a device again).
   */
  disconnect(clientId: string, { removed = false }: { removed?: boolean } = {}): void {
    // aedes keeps connected clients by id; the map is public in JS but missing from its typings.
    const clients = (this.aedes as unknown as { clients: Record<string, Client | undefined> }).clients;
    const client = clients[clientId];
    if (client && removed) this.silenced.add(client);
    client?.close();
    // A login of that id being checked now would otherwise finish with what was just taken away.
    this.inFlight.revoke(clientId);
  }

  link(): HubLink {
    return new AedesLink(this.aedes, `mqtt://${this.host}:${this.port}`);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** The hub inside the broker: it sees every publish live (aedes does not replay retained messages to it). */
class AedesLink implements HubLink {
  readonly #subscriptions: Array<[string, (packet: AedesPublishPacket, done: () => void) => void, (message: InboundMessage) => void]> = [];

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
    this.#subscriptions.push([filter, deliver, handler]);
    return new Promise((resolve) => this.aedes.subscribe(filter, deliver, () => resolve()));
  }

  async unsubscribe(filter: string, handler: (message: InboundMessage) => void): Promise<void> {
    const at = this.#subscriptions.findIndex(([f, , h]) => f === filter && h === handler);
    if (at < 0) return;
    const [entry] = this.#subscriptions.splice(at, 1);
    if (entry) await new Promise<void>((resolve) => this.aedes.unsubscribe(filter, entry[1], () => resolve()));
  }

  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void> {
    const packet: PublishPacket = {
      cmd: 'publish',
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos: options.qos,
      retain: options.retain,
      dup: false,
    };
    return new Promise((resolve, reject) => this.aedes.publish(packet, (error) => (error ? reject(error) : resolve())));
  }

  async close(): Promise<void> {
    for (const [filter, deliver] of this.#subscriptions.splice(0)) {
      await new Promise<void>((resolve) => this.aedes.unsubscribe(filter, deliver, () => resolve()));
    }
  }
}

function listen(server: Server, host: string, port: number, flag: string, started: Server[]): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `MQTT port ${port} on ${host} is in use (another broker, e.g. Mosquitto?): stop it, choose another ${flag}, or use it with --mqtt-url`
            : `cannot listen for MQTT on ${host}:${port}: ${error.message}`,
        ),
      ),
    );
    server.listen(port, host, () => {
      started.push(server);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

function remoteAddress(client: Client): string | undefined {
  return (client.conn as { remoteAddress?: string }).remoteAddress;
}
