/**
 * Certificates for HTTPS tests, made with openssl: a leaf signed by a private CA (the owner's own
 * certificate as a home network's CA issues it), served alone without its chain.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LeafFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** A private CA and a leaf it signed for `name` (not 127.0.0.1), valid for a month; files in `dir`. */
export function privateCaLeaf(openssl: string, dir: string, name = 'hub.example.com'): LeafFiles {
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  const keyFile = join(dir, 'leaf.key');
  const csr = join(dir, 'leaf.csr');
  const certFile = join(dir, 'leaf.pem');
  const ext = join(dir, 'leaf.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const run = (args: string[]) => execFileSync(openssl, args, { stdio: 'ignore' });
  run(['req', '-x509', ...ec, '-days', '30', '-subj', '/CN=Home CA', '-keyout', caKey, '-out', caFile]);
  run(['req', ...ec, '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', csr]);
  writeFileSync(ext, `subjectAltName=DNS:${name}\nextendedKeyUsage=serverAuth\n`);
  run(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-days', '30', '-extfile', ext, '-out', certFile]);
  return { caFile, certFile, keyFile };
}
