/**
 * The hub's own login for an external broker, written by `mqttkit mosquitto-config` into the data
 * dir (owner-only), so neither the config file nor the command line has to carry the password.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parseJson } from '../core/json.js';
import { writeFileAtomic } from './atomic-file.js';

export const BROKER_CREDENTIALS_FILE = 'broker-credentials.json';

export interface BrokerCredentials {
  username: string;
  password: string;
}

export function readBrokerCredentials(dataDir: string): BrokerCredentials | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, BROKER_CREDENTIALS_FILE), 'utf8');
  } catch {
    return undefined;
  }
  // A damaged file is refused before the hub or a command starts (state-check.ts names it): here it reads as none.
  const parsed = parseJson(text, credentialsSchema);
  return parsed.ok ? { username: parsed.value.username, password: parsed.value.password } : undefined;
}

/** broker-credentials.json: the hub's login for an external broker. */
export const credentialsSchema = z.looseObject({ username: z.string().min(1), password: z.string().min(1) });

export function writeBrokerCredentials(dataDir: string, credentials: BrokerCredentials): void {
  writeFileAtomic(join(dataDir, BROKER_CREDENTIALS_FILE), `${JSON.stringify(credentials, null, 2)}\n`);
}
