/**
 * The CLI's HTTPS client for its own hub: it trusts exactly the certificate the running hub
 * serves (its SHA-256 named in hub.json, read from the data dir) and nothing else. The pin is the whole
 * check: no chain, name or date is asked of the certificate (a leaf of a private CA, a name other than
 * 127.0.0.1, an expired one all pass), and a certificate other than the pinned one ends the connection
 * right after the handshake, before a byte of the request (and its bearer token) is written. Process
 * wide TLS settings stay as they are: no NODE_TLS_REJECT_UNAUTHORIZED, no global agent.
 */
import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';

/** `certFile` (hub.json's) only names the certificate in a refusal: the fingerprint is all that is compared. */
export function pinnedFetch(certFile: string, fingerprint256: string): typeof globalThis.fetch {
  // Chain and date checks are off because the pin replaces them; the fingerprint is compared before undici writes anything.
  const connector = buildConnector({ rejectUnauthorized: false });
  const agent = new Agent({
    connect: (options, callback) =>
      connector(options, (error, socket) => {
        if (error || !socket) return callback(error ?? new Error('no socket'), null);
        const served = (socket as TLSSocket).getPeerCertificate?.()?.fingerprint256;
        if (served === fingerprint256) return callback(null, socket);
        socket.destroy();
        callback(
          Object.assign(
            new Error(`the hub's certificate is not the one hub.json names (SHA-256 ${served ?? 'none'}, expected ${fingerprint256}, of ${certFile})`),
            {
              code: 'ERR_MQTTKIT_CERT_PIN',
            },
          ),
          null,
        );
      }),
  });
  // undici's fetch is the one Node's global fetch is built on; its types differ only in name.
  return ((input: string, init?: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof globalThis.fetch;
}
