/**
 * HAP-NodeJS's `bind` option narrows only the mDNS advertisement: its HAP server still listens on
 * every interface (0.0.0.0). A user who asks for one address (tests ask for 127.0.0.1) means it,
 * so we pass the address through to the server's listen call.
 */
import { HAPServer } from 'hap-nodejs';

let patched = false;
let host: string | undefined;

export function setHapListenHost(address: string | undefined): void {
  host = address;
  if (patched || address === undefined) return;
  patched = true;
  const original = HAPServer.prototype.listen;
  HAPServer.prototype.listen = function listen(this: HAPServer, port?: number, requested?: string) {
    return original.call(this, port, host ?? requested);
  };
}
