import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** The package version, shown as the bridge's firmware revision and by `mqttkit --version`. */
export const VERSION: string = z
  .object({ version: z.string().min(1) })
  .parse(JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'))).version;
