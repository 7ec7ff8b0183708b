/** A loopback TCP proxy whose connections the test can cut, to drop a device's broker link mid-stream. */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #pairs = new Set<[Socket, Socket]>();
  #frozen = false;
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(port = 0): Promise<number> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      if (!this.#frozen) client.pipe(upstream).pipe(client);
      client.on('close', () => {
        this.#pairs.delete(pair);
        upstream.destroy();
      });
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
    this.#server = server;
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  /** Drops every connection and refuses new ones for `ms`, then listens again on the same port. */
  async cut(ms: number): Promise<void> {
    await this.stop();
    await new Promise((r) => setTimeout(r, ms));
    await this.start(this.port);
  }

  /**
   * A network partition: every connection stays open but nothing passes either way (nor for new
   * connections) until `thaw()`. Neither side sees a close, as when a cable is pulled.
   */
  freeze(): void {
    this.#frozen = true;
    for (const [client, upstream] of this.#pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  thaw(): void {
    this.#frozen = false;
    for (const [client, upstream] of this.#pairs) client.pipe(upstream).pipe(client);
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
