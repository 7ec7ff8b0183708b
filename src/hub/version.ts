import { readFileSync } from 'node:fs';

/** The package version, shown as the bridge's firmware revision and by `mqttkit --version`. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
