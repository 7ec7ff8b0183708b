/**
 * Issue 17, HTTPS for the dashboard (docs/api.md ): `--http-tls auto` makes a self-signed
 * certificate on the first start (key 0600) that a client verifies against the certificate file, the
 * session cookie is `Secure`, a restart serves the same certificate, the CLI reaches the HTTPS hub
 * (trusting exactly its certificate), and a damaged key file is refused by name.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { cliAsync } from '../helpers/mqtt-device.js';
import { requireTool } from '../helpers/system-tools.js';
import { privateCaLeaf } from '../helpers/tls-certs.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTPS request that verifies the hub's certificate against `ca` (and the name 127.0.0.1 in it). */
function httpsRequest(port: number, ca: string, path: string, init: { method?: string; body?: string; origin?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: init.method ?? 'GET',
        ca,
        headers: {
          ...(init.body ? { 'content-type': 'application/json' } : {}),
          ...(init.origin ? { origin: init.origin } : {}),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** The fingerprint hub.json gives the CLI (docs/data.md [D-8] `httpTls`), read as the file it is. */
const pinnedIn = (dataDir: string) =>
  (JSON.parse(readFileSync(join(dataDir, 'hub.json'), 'utf8')) as { httpTls?: { fingerprint256?: string } }).httpTls?.fingerprint256;

describe('the dashboard over HTTPS (--http-tls auto)', { timeout: 120_000 }, () => {
  const dataDir = tempDataDir();
  const certFile = join(dataDir, 'https', 'cert.pem');
  const keyFile = join(dataDir, 'https', 'key.pem');
  let hub: RunningHub | undefined;
  let fingerprint = '';

  before(async () => {
    hub = await startHub({ dataDir, args: ['--http-tls', 'auto'] });
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    removeDataDir(dataDir);
  });

  it('makes a certificate for localhost and 127.0.0.1 (key 0600), prints its fingerprint, and serves HTTPS a client verifies against it', async () => {
    const cert = readFileSync(certFile, 'utf8');
    const x509 = new X509Certificate(cert);
    fingerprint = x509.fingerprint256;
    assert.match(x509.subjectAltName ?? '', /DNS:localhost/);
    assert.match(x509.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'the private key is owner-only');
    assert.match(hub!.output(), new RegExp(`Dashboard: https://127\\.0\\.0\\.1:${hub!.info.httpPort}`), hub!.output());
    assert.ok(hub!.output().includes(fingerprint), `the banner prints the SHA-256 fingerprint ${fingerprint}:\n${hub!.output()}`);
    assert.equal(pinnedIn(dataDir), fingerprint, 'hub.json names the certificate the CLI pins');
    const health = await httpsRequest(hub!.info.httpPort!, cert, '/api/health');
    assert.equal(health.status, 200, health.body);
    // Plain HTTP on the same port is not served (a TLS server answers no HTTP request).
    await assert.rejects(fetch(`http://127.0.0.1:${hub!.info.httpPort}/api/health`, { signal: AbortSignal.timeout(5000) }));
  });

  it('sets the session cookie Secure, and takes the dashboard origin as https://', async () => {
    const port = hub!.info.httpPort!;
    const setup = await httpsRequest(port, readFileSync(certFile, 'utf8'), '/api/setup', {
      method: 'POST',
      body: JSON.stringify({ username: 'admin', password: 'correct horse battery' }),
      origin: `https://127.0.0.1:${port}`,
    });
    assert.equal(setup.status, 200, setup.body);
    const cookie = [setup.headers['set-cookie']].flat().find((c) => c?.startsWith('mqttkit_session='));
    assert.ok(cookie, `a session cookie: ${JSON.stringify(setup.headers)}`);
    assert.match(cookie, /;\s*Secure/i, cookie);
    assert.match(cookie, /;\s*HttpOnly/i, cookie);
  });

  it('lets the CLI reach the HTTPS hub (pinned to its certificate, verification on)', async () => {
    const answer = await cliAsync(['query', 'memory', '--below', '50000', '--json', '--data-dir', dataDir]);
    assert.equal(answer.status, 0, answer.stderr);
    assert.equal((JSON.parse(answer.stdout) as { kind: string }).kind, 'memory');
  });

  it('refuses, in the CLI, a hub whose certificate is not the one hub.json names', async () => {
    const runtime = join(dataDir, 'hub.json');
    const saved = readFileSync(runtime, 'utf8');
    const info = JSON.parse(saved) as { httpTls: { fingerprint256: string } };
    info.httpTls.fingerprint256 = `00:${info.httpTls.fingerprint256.slice(3)}`;
    writeFileSync(runtime, JSON.stringify(info));
    try {
      const answer = await cliAsync(['query', 'memory', '--below', '50000', '--json', '--data-dir', dataDir]);
      assert.notEqual(answer.status, 0, answer.stdout);
      assert.match(answer.stderr, /cannot be reached/, answer.stderr);
    } finally {
      writeFileSync(runtime, saved);
    }
  });

  it('serves the same certificate after a restart (same fingerprint)', async () => {
    assert.equal(await hub!.stop(), 0);
    hub = await startHub({ dataDir, args: ['--http-tls', 'auto'] });
    assert.equal(new X509Certificate(readFileSync(certFile)).fingerprint256, fingerprint);
    assert.ok(hub.output().includes(fingerprint), hub.output());
    const health = await httpsRequest(hub.info.httpPort!, readFileSync(certFile, 'utf8'), '/api/health');
    assert.equal(health.status, 200);
    assert.doesNotMatch(hub.output(), /first visit to the dashboard creates/, 'the admin exists: the banner does not ask for one');
  });

  it('refuses to start with a damaged key file, naming it and the fix (the file is kept)', async () => {
    assert.equal(await hub!.stop(), 0);
    hub = undefined;
    writeFileSync(keyFile, '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
    await assert.rejects(startHub({ dataDir, args: ['--http-tls', 'auto'] }), (error: Error) => {
      assert.match(error.message, /hub exited with 1/, error.message);
      assert.ok(error.message.includes(keyFile), `names ${keyFile}:\n${error.message}`);
      assert.match(error.message, /not a PEM private key/, error.message);
      assert.match(error.message, /remove .*cert\.pem and .*key\.pem/, error.message);
      return true;
    });
    assert.match(readFileSync(keyFile, 'utf8'), /not a key/, 'the damaged file is not replaced');
  });

  it('refuses a --http-tls-cert file that does not exist, by name', async () => {
    const missing = join(dataDir, 'no-such-cert.pem');
    const other = tempDataDir();
    try {
      await assert.rejects(startHub({ dataDir: other, args: ['--http-tls-cert', missing, '--http-tls-key', keyFile] }), (error: Error) => {
        assert.ok(error.message.includes(`${missing} does not exist`), error.message);
        return true;
      });
    } finally {
      removeDataDir(other);
    }
  });
});

describe('the dashboard over HTTPS after a start cut short (--http-tls auto)', { timeout: 60_000 }, () => {
  const dataDir = tempDataDir();
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    removeDataDir(dataDir);
  });

  it('starts with a new pair when <data>/https holds key.pem alone (the half is kept aside)', async () => {
    mkdirSync(join(dataDir, 'https'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dataDir, 'https', 'key.pem'), 'half of a pair', { mode: 0o600 });
    hub = await startHub({ dataDir, args: ['--http-tls', 'auto'] });
    const cert = readFileSync(join(dataDir, 'https', 'cert.pem'), 'utf8');
    assert.equal(pinnedIn(dataDir), new X509Certificate(cert).fingerprint256);
    const health = await httpsRequest(hub.info.httpPort!, cert, '/api/health');
    assert.equal(health.status, 200, health.body);
    assert.match(hub.output(), /a new self-signed certificate was made/, hub.output());
  });
});

describe('the dashboard over HTTPS with your own certificate (--http-tls-cert/--http-tls-key)', { timeout: 120_000 }, () => {
  const dataDir = tempDataDir();
  const files = tempDataDir();
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    removeDataDir(dataDir);
    removeDataDir(files);
  });

  it('serves it, and the CLI trusts exactly that certificate though it names only hub.example (the CLI connects to 127.0.0.1)', async (t) => {
    const openssl = requireTool(t, 'openssl', ['openssl'], 'apt-get install openssl');
    if (!openssl) return;
    const cert = join(files, 'cert.pem');
    const key = join(files, 'key.pem');
    execFileSync(
      openssl,
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '30',
        '-subj',
        '/CN=hub.example',
        '-addext',
        'subjectAltName=DNS:hub.example',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    hub = await startHub({ dataDir, args: ['--http-tls-cert', cert, '--http-tls-key', key] });
    const fingerprint = new X509Certificate(readFileSync(cert)).fingerprint256;
    assert.equal(pinnedIn(dataDir), fingerprint);
    assert.ok(hub.output().includes(fingerprint), hub.output());
    assert.doesNotMatch(hub.output(), /self-signed: your browser/, 'not called self-made');
    const answer = await cliAsync(['query', 'memory', '--below', '50000', '--json', '--data-dir', dataDir]);
    assert.equal(answer.status, 0, answer.stderr);
    assert.equal(existsSync(join(dataDir, 'https')), false, 'no certificate is made');
  });

  it('lets the CLI reach a hub serving a leaf of a private CA (without its chain): the pin alone decides', async (t) => {
    const openssl = requireTool(t, 'openssl', ['openssl'], 'apt-get install openssl');
    if (!openssl) return;
    const leaf = privateCaLeaf(openssl, files);
    await hub?.stop();
    hub = await startHub({ dataDir, args: ['--http-tls-cert', leaf.certFile, '--http-tls-key', leaf.keyFile] });
    assert.equal(pinnedIn(dataDir), new X509Certificate(readFileSync(leaf.certFile)).fingerprint256);
    const answer = await cliAsync(['query', 'memory', '--below', '50000', '--json', '--data-dir', dataDir]);
    assert.equal(answer.status, 0, answer.stderr);
    assert.equal((JSON.parse(answer.stdout) as { kind: string }).kind, 'memory');
  });
});
