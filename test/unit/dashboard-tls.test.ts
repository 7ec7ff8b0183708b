/**
 * [A-12] `--http-tls auto`'s certificate files: the pair only ever appears whole. Starts at once all end
 * up serving the one pair on disk (never one start's key with another's certificate), half a pair is
 * made anew (the half kept aside), and an expired one is renewed (kept aside).
 */
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generate } from 'selfsigned';
import { dashboardTls } from '../../src/web/tls.js';

describe('the self-made dashboard certificate on disk (--http-tls auto)', { timeout: 60_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'mqttkit-tls-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const fresh = (name: string) => {
    const dir = join(root, name);
    mkdirSync(dir);
    return dir;
  };
  const onDisk = (dataDir: string) => new X509Certificate(readFileSync(join(dataDir, 'https', 'cert.pem'))).fingerprint256;

  it('four starts at once: each serves the pair on disk, which is one pair', async () => {
    const dataDir = fresh('race');
    const made = await Promise.all([1, 2, 3, 4].map(() => dashboardTls({ kind: 'auto' }, dataDir)));
    const fingerprint = onDisk(dataDir);
    for (const tls of made) assert.equal(tls.fingerprint256, fingerprint, 'every start serves (and pins) the certificate on disk');
    const cert = new X509Certificate(readFileSync(join(dataDir, 'https', 'cert.pem')));
    assert.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(join(dataDir, 'https', 'key.pem')))), 'the key on disk is the certificate’s');
    assert.deepEqual(readdirSync(dataDir), ['https'], 'no staging folder left behind');
  });

  it('makes a new pair when only the key exists (a start cut short), keeping the half aside', async () => {
    const dataDir = fresh('half');
    mkdirSync(join(dataDir, 'https'), { mode: 0o700 });
    writeFileSync(join(dataDir, 'https', 'key.pem'), 'half', { mode: 0o600 });
    const warnings: string[] = [];
    const tls = await dashboardTls({ kind: 'auto' }, dataDir, (line) => warnings.push(line));
    assert.equal(tls.fingerprint256, onDisk(dataDir));
    assert.match(warnings.join('\n'), /cert\.pem was missing .* a new self-signed certificate was made/);
    const aside = readdirSync(dataDir).find((name) => name.startsWith('https.incomplete-'));
    assert.ok(aside && readFileSync(join(dataDir, aside, 'key.pem'), 'utf8') === 'half', 'the half is kept aside');
  });

  it('renews an expired certificate of its own making, keeping the old one aside', async () => {
    const dataDir = fresh('expired');
    const day = 86_400_000;
    const old = await generate([{ name: 'commonName', value: 'old' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(Date.now() - 900 * day),
      notAfterDate: new Date(Date.now() - day),
    });
    mkdirSync(join(dataDir, 'https'), { mode: 0o700 });
    writeFileSync(join(dataDir, 'https', 'key.pem'), old.private, { mode: 0o600 });
    writeFileSync(join(dataDir, 'https', 'cert.pem'), old.cert);
    const tls = await dashboardTls({ kind: 'auto' }, dataDir);
    assert.notEqual(tls.fingerprint256, new X509Certificate(old.cert).fingerprint256);
    assert.ok(new Date(new X509Certificate(tls.cert).validTo).getTime() > Date.now());
    const names = [...readdirSync(dataDir), ...readdirSync(join(dataDir, 'https'))];
    assert.ok(
      names.some((name) => name.includes('expired')),
      `the old one is kept: ${names.join(' ')}`,
    );
  });
});
