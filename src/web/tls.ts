/**
 * HTTPS for the dashboard (docs/api.md ): the owner's own certificate and key
 * (`--http-tls-cert`/`--http-tls-key`), or with `--http-tls auto` a self-signed one made on the first
 * start into `<data dir>/https/` and reused after (its fingerprint stays, so a browser's exception and
 * the CLI's pin hold). A file that cannot be used is refused by name with the fix, never replaced.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { writeFileAtomic } from '../store/atomic-file.js';

export type DashboardTlsOption = { kind: 'files'; certFile: string; keyFile: string } | { kind: 'auto' };

export interface DashboardTls {
  cert: string;
  key: string;
  certFile: string;
  /** SHA-256 of the certificate (`AA:BB:…`), as browsers show it: the banner prints it, the CLI pins it. */
  fingerprint256: string;
  /** Made by this hub (`--http-tls auto`), not given by the owner. */
  generated: boolean;
}

/** A certificate or key that cannot serve HTTPS: the message names the file and the fix. */
export class DashboardTlsError extends Error {}

export const AUTO_TLS_DIR = 'https';
export const AUTO_CERT = 'cert.pem';
export const AUTO_KEY = 'key.pem';
/** Apple's limit for a TLS server certificate (825 days): a longer one is refused by Safari and iOS. */
const AUTO_VALIDITY_DAYS = 825;

/** The certificate and key the dashboard serves with, checked (readable, PEM, a pair, not expired), or a DashboardTlsError. */
export async function dashboardTls(option: DashboardTlsOption, dataDir: string, warn: (line: string) => void = () => {}): Promise<DashboardTls> {
  if (option.kind === 'files') {
    const fix = 'give a PEM certificate with --http-tls-cert and its PEM private key with --http-tls-key, or use --http-tls auto';
    return { ...checkPair(option.certFile, option.keyFile, fix), generated: false };
  }
  const dir = join(dataDir, AUTO_TLS_DIR);
  const certFile = join(dir, AUTO_CERT);
  const keyFile = join(dir, AUTO_KEY);
  const fix = `remove ${certFile} and ${keyFile} to have a new self-signed certificate made (browsers then warn once more), or give your own with --http-tls-cert/--http-tls-key`;
  const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');
  // The pair only ever appears whole: made in a folder of its own and renamed into place in one step, so two
  // starts at once cannot pair one's key with the other's certificate, and a power cut leaves no half.
  for (let attempt = 0; attempt < 5; attempt++) {
    const haveCert = existsSync(certFile);
    const haveKey = existsSync(keyFile);
    if (haveCert && haveKey) {
      const found = checkPair(certFile, keyFile, fix, { allowExpired: true });
      if (!found.expired) return { ...found, generated: true };
      // An expired certificate of our own making is renewed (kept aside): a service must not stop starting after 825 days.
      const aside = `${dir}.expired-${stamp()}`;
      if (moveAside(dir, aside))
        warn(`the dashboard's self-signed certificate expired; a new one was made (the old one is kept in ${aside}): browsers warn once more`);
      continue;
    }
    if (haveCert || haveKey) {
      // Half a pair (an older mqttkit stopped between its two writes): this is our own folder, so it is made anew, the half kept aside.
      const aside = `${dir}.incomplete-${stamp()}`;
      if (moveAside(dir, aside))
        warn(
          `${haveCert ? keyFile : certFile} was missing while ${haveCert ? certFile : keyFile} existed (a start cut short): a new self-signed certificate was made, the half kept in ${aside}`,
        );
      continue;
    }
    const made = await makeSelfSigned();
    const staging = mkdtempSync(join(dataDir, `.${AUTO_TLS_DIR}-`));
    writeFileAtomic(join(staging, AUTO_KEY), made.key, { mode: 0o600 });
    writeFileAtomic(join(staging, AUTO_CERT), made.cert, { mode: 0o644 });
    try {
      // Replaces a missing or empty folder; a full one is another start's pair, which is then used.
      renameSync(staging, dir);
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      if (!existsSync(certFile) && !existsSync(keyFile))
        throw new DashboardTlsError(`${dir} holds files other than ${AUTO_CERT} and ${AUTO_KEY}, so no certificate can be made there: move them away`);
      continue;
    }
    return { ...checkPair(certFile, keyFile, fix), generated: true };
  }
  throw new DashboardTlsError(`${dir} keeps changing while the dashboard's certificate is made (another hub starting on this data dir?): start one hub only`);
}

/** Renames `from` to `to`; false when `from` is already gone (another start moved it first). */
function moveAside(from: string, to: string): boolean {
  try {
    renameSync(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** A self-signed certificate naming localhost, 127.0.0.1, ::1, this machine's name and <name>.local. */
async function makeSelfSigned(): Promise<{ cert: string; key: string }> {
  const host = hostname();
  const names = [...new Set(['localhost', host, `${host}.local`].filter((n) => /^[A-Za-z0-9.-]{1,253}$/.test(n)))];
  const now = new Date();
  const made = await generate([{ name: 'commonName', value: `mqttkit on ${host}`.slice(0, 64) }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 3_600_000), // an hour of slack for a client's clock
    notAfterDate: new Date(now.getTime() + AUTO_VALIDITY_DAYS * 86_400_000 - 3_600_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [...names.map((value) => ({ type: 2 as const, value })), { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }],
      },
    ],
  });
  return { cert: made.cert, key: made.private };
}

function readPem(file: string, what: string, fix: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read by this user' : `cannot be read (${code ?? String(error)})`;
    throw new DashboardTlsError(`the dashboard's ${what} ${file} ${why}: ${fix}`);
  }
  return text;
}

function checkPair(
  certFile: string,
  keyFile: string,
  fix: string,
  how: { allowExpired?: boolean } = {},
): Omit<DashboardTls, 'generated'> & { expired: boolean } {
  const cert = readPem(certFile, 'certificate', fix);
  const key = readPem(keyFile, 'private key', fix);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    throw new DashboardTlsError(`the dashboard's certificate ${certFile} is not a PEM certificate (${(error as Error).message}): ${fix}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    const message = (error as Error).message;
    const why = /passphrase/i.test(message) ? 'is encrypted with a passphrase, which the hub cannot ask for' : `is not a PEM private key (${message})`;
    throw new DashboardTlsError(`the dashboard's private key ${keyFile} ${why}: ${fix}`);
  }
  if (!x509.checkPrivateKey(privateKey))
    throw new DashboardTlsError(`the dashboard's private key ${keyFile} does not belong to the certificate ${certFile}: ${fix}`);
  const expired = new Date(x509.validTo).getTime() < Date.now();
  if (expired && !how.allowExpired) throw new DashboardTlsError(`the dashboard's certificate ${certFile} expired on ${x509.validTo}: ${fix}`);
  return { cert, key, certFile, fingerprint256: x509.fingerprint256, expired };
}
