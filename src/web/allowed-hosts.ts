/**
 * The Host names the hub answers to. A DNS-rebinding page reaches the hub under the page's own
 * name (evil.example, re-pointed at 192.168.1.10), so to the browser the hub is same-origin with the
 * attacker; only the Host header still tells. The hub accepts the names that are its own: its
 * interface addresses, localhost, its host name (and `<host name>.local`), `--http-host` when it is
 * specific, and the names the owner adds with `--http-allowed-hosts`.
 */
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';

const NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
/** Interface addresses change (DHCP, Wi-Fi); look again on a miss, at most this often. */
const REFRESH_MS = 5000;

/** One spelling per name: lower case, no trailing dot, IPv6 without brackets and zone, canonical. */
export function canonicalHost(name: string): string | undefined {
  let n = name.trim().toLowerCase().replace(/\.$/, '');
  if (n.startsWith('[') && n.endsWith(']')) n = n.slice(1, -1);
  n = n.replace(/%.*$/, '');
  if (isIP(n) === 6) return new URL(`http://[${n}]/`).hostname.slice(1, -1);
  if (isIP(n) === 4) return n;
  return n.length <= 253 && NAME.test(n) ? n : undefined;
}

/** The name in a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), or undefined if it is malformed. */
export function hostHeaderName(header: string | undefined): string | undefined {
  if (!header || header.length > 300) return undefined;
  const match = /^(\[[^\]]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header);
  return match ? canonicalHost(match[1]!) : undefined;
}

export class HostAllowlist {
  readonly #fixed: Set<string>;
  #interfaces = new Set<string>();
  #readAt = 0;

  /** `listenHost`: `--http-host` (counts when it is a name or a specific address); `extra`: `--http-allowed-hosts`. */
  constructor(
    listenHost: string,
    extra: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    const fixed = ['localhost', '127.0.0.1', '::1', hostname(), `${hostname()}.local`, ...extra];
    if (!['0.0.0.0', '::', ''].includes(listenHost)) fixed.push(listenHost);
    this.#fixed = new Set(fixed.map(canonicalHost).filter((n): n is string => n !== undefined));
    this.#readInterfaces();
  }

  /** Whether a request with this Host header is for this hub. */
  allows(header: string | undefined): boolean {
    const name = hostHeaderName(header);
    if (name === undefined) return false;
    if (this.#fixed.has(name) || this.#interfaces.has(name)) return true;
    if (isIP(name) === 0 || this.now() - this.#readAt < REFRESH_MS) return false;
    this.#readInterfaces();
    return this.#interfaces.has(name);
  }

  #readInterfaces(): void {
    this.#readAt = this.now();
    const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => canonicalHost(i.address)));
    this.#interfaces = new Set(addresses.filter((a): a is string => a !== undefined));
  }
}
