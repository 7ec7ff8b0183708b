/** The dashboard and API as a feature (`--http-port -1` leaves it out). */
import { removeHubToken, writeHubToken } from '../../store/runtime-file.js';
import { WebStore } from '../../store/web-store.js';
import { type WebDeps, WebServer } from '../../web/server.js';
import { dashboardTls } from '../../web/tls.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';

/** What the web feature needs from the other features. */
export type WebParts = Pick<
  WebDeps,
  'channel' | 'bridges' | 'counters' | 'cancelJob' | 'cancelRollout' | 'disconnect' | 'removeDevice' | 'otaOff' | 'registration' | 'espnow' | 'matter'
>;

export class WebFeature implements Feature {
  readonly name = 'web';
  #port: number | undefined;
  #tls: { certFile: string; fingerprint256: string; generated: boolean } | undefined;

  constructor(
    private readonly ctx: HubContext,
    private readonly parts: () => WebParts,
  ) {}

  async start(scope: FeatureScope): Promise<void> {
    const { options } = this.ctx;
    // HTTPS: a certificate that cannot be used stops the start here, named, before any port opens.
    const tls = options.httpTls ? await dashboardTls(options.httpTls, options.dataDir, (line) => scope.log.warn(line)) : undefined;
    this.#tls = tls && { certFile: tls.certFile, fingerprint256: tls.fingerprint256, generated: tls.generated };
    const web = new WebServer({
      tls: tls && { cert: tls.cert, key: tls.key },
      ...this.parts(),
      registry: this.ctx.registry,
      bus: this.ctx.bus,
      ota: this.ctx.ota,
      history: this.ctx.history,
      accounts: this.ctx.accounts,
      web: new WebStore(this.ctx.db),
      pincode: this.ctx.pincode,
      policy: options.mqtt.kind === 'embedded' ? options.mqtt.registration : 'closed',
      externalBroker: options.mqtt.kind !== 'embedded',
      dataDir: options.dataDir,
      log: scope.log,
      allowedHosts: options.httpAllowedHosts,
      otaMaxFileSize: options.otaMaxFileSize,
      faults: () => this.ctx.faults.snapshot(),
      cluster: options.cluster,
      // The CLI's way in: a new token each start, owner-only beside hub.json, removed at stop.
      localToken: writeHubToken(options.dataDir),
    });
    scope.defer(() => removeHubToken(options.dataDir));
    this.#port = await web.start(options.httpHost, options.httpPort);
    scope.defer(() => web.stop());
  }

  /** The certificate the dashboard serves with, when it serves HTTPS. */
  get tls(): { certFile: string; fingerprint256: string; generated: boolean } | undefined {
    return this.#tls;
  }

  get port(): number | undefined {
    return this.#port;
  }
}
