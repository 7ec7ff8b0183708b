/**
 * The hub's own login for an external broker, written by `mqttkit mosquitto-config` into the data
 * dir (owner-only), so neither the config file nor the command line has to carry the password.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';

export const BROKER_CREDENTIALS_FILE = 'broker-credentials.json';

export interface BrokerCredentials {
  username: string;
  password: string;
}

export function readBrokerCredentials(dataDir: string): BrokerCredentials | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(dataDir, BROKER_CREDENTIALS_FILE), 'utf8')) as Partial<BrokerCredentials>;
    return typeof parsed.username === 'string' && typeof parsed.password === 'string' ? { username: parsed.username, password: parsed.password } : undefined;
  } catch {
    return undefined;
  }
}

export function writeBrokerCredentials(dataDir: string, credentials: BrokerCredentials): void {
  writeFileAtomic(join(dataDir, BROKER_CREDENTIALS_FILE), `${JSON.stringify(credentials, null, 2)}\n`);
}
