/**
 * The CLI's HTTPS client for its own hub: it trusts exactly the certificate the running hub
 * serves (named in hub.json, read from the data dir) and nothing else, whatever the name it was made
 * for (the CLI connects to 127.0.0.1, a certificate of your own may name only hub.example.com). Process
 * wide TLS settings stay as they are: no NODE_TLS_REJECT_UNAUTHORIZED, no global agent.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import { CliError } from './workspace.js';

export function pinnedFetch(certFile: string, fingerprint256: string): typeof globalThis.fetch {
  let pem: string;
  try {
    pem = readFileSync(certFile, 'utf8');
  } catch (error) {
    throw new CliError(
      `the hub serves HTTPS, and its certificate ${certFile} (named in hub.json) cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}): run this as the user the hub runs as`,
    );
  }
  const agent = new Agent({
    connect: {
      // The hub's own certificate is a trust anchor (a self-signed one is its own); public roots stay for a CA-issued one.
      ca: [pem, ...rootCertificates],
      checkServerIdentity: (_host, cert) =>
        cert.fingerprint256 === fingerprint256
          ? undefined
          : Object.assign(new Error(`the hub's certificate is not the one hub.json names (SHA-256 ${cert.fingerprint256}, expected ${fingerprint256})`), {
              code: 'ERR_MQTTKIT_CERT_PIN',
            }),
    },
  });
  // undici's fetch is the one Node's global fetch is built on; its types differ only in name.
  return ((input: string, init?: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof globalThis.fetch;
}
