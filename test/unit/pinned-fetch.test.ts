/**
 * The CLI's pinned HTTPS client against real HTTPS servers: the pin is the whole check, so a leaf
 * of a private CA served without its chain and an expired certificate are reached; a certificate other
 * than the pinned one is refused before the request (and its bearer token) is written: the server sees
 * no request at all.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generate } from 'selfsigned';
import { pinnedFetch } from '../../src/cli/pinned-fetch.js';
import { requireTool } from '../helpers/system-tools.js';
import { privateCaLeaf } from '../helpers/tls-certs.js';

describe('the CLI’s pinned HTTPS client [A-12]', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-pin-'));
  const servers: Server[] = [];
  after(() => {
    for (const server of servers) server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An HTTPS server on 127.0.0.1 that counts the requests it receives (and the bearer tokens among them). */
  async function serve(cert: string, key: string): Promise<{ url: string; requests: string[] }> {
    const requests: string[] = [];
    const server = createServer({ cert, key }, (req, res) => {
      requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/api/health`, requests };
  }

  const get = (fetcher: typeof fetch, url: string) => fetcher(url, { headers: { authorization: 'Bearer secret-token' }, signal: AbortSignal.timeout(10_000) });

  it('reaches a hub serving a leaf of a private CA without its chain, for a name other than 127.0.0.1', async (t) => {
    const openssl = requireTool(t, 'openssl', ['openssl'], 'apt-get install openssl');
    if (!openssl) return;
    const leaf = privateCaLeaf(openssl, dir);
    const cert = readFileSync(leaf.certFile, 'utf8');
    const server = await serve(cert, readFileSync(leaf.keyFile, 'utf8'));
    const answer = await get(pinnedFetch(leaf.certFile, new X509Certificate(cert).fingerprint256), server.url);
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), { ok: true });
    assert.equal(server.requests.length, 1);
  });

  it('reaches a hub whose certificate has expired (the pin, not the date, says it is the hub)', async () => {
    const day = 86_400_000;
    const made = await generate([{ name: 'commonName', value: 'expired hub' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(Date.now() - 60 * day),
      notAfterDate: new Date(Date.now() - 30 * day),
    });
    const certFile = join(dir, 'expired.pem');
    writeFileSync(certFile, made.cert);
    const x509 = new X509Certificate(made.cert);
    assert.ok(new Date(x509.validTo).getTime() < Date.now(), 'the certificate has expired');
    const server = await serve(made.cert, made.private);
    const answer = await get(pinnedFetch(certFile, x509.fingerprint256), server.url);
    assert.equal(answer.status, 200);
  });

  it('refuses a certificate other than the pinned one before writing the request: the server receives none', async () => {
    const made = await generate([{ name: 'commonName', value: 'someone else' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
    const certFile = join(dir, 'other.pem');
    writeFileSync(certFile, made.cert);
    const server = await serve(made.cert, made.private);
    const wrong = new X509Certificate(made.cert).fingerprint256.replace(/^../, (b) => (b === '00' ? '01' : '00'));
    await assert.rejects(get(pinnedFetch(certFile, wrong), server.url), (error: Error & { cause?: Error & { code?: string } }) => {
      assert.match(`${error.cause?.message ?? error.message}`, /not the one hub\.json names/);
      return true;
    });
    assert.deepEqual(server.requests, [], 'no request (and no bearer token) reached the server');
  });
});
