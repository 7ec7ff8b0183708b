/** What `mqttkit start` prints for people: the setup code, a QR code to scan, and where devices connect. */
import { networkInterfaces } from 'node:os';
import type { Hub } from '../hub/hub.js';
import { VERSION } from '../hub/version.js';
import { qrCode } from '../web/qr-code.js';

export async function startBanner(hub: Hub): Promise<string> {
  const lines: string[] = [];
  const bridges = hub.bridges();
  lines.push(
    '',
    `mqttkit ${VERSION}, data dir ${hub.options.dataDir}`,
    hub.options.homekit === false
      ? 'mqttkit is running without HomeKit (--no-homekit): no bridge is published.'
      : `mqttkit is running. HomeKit setup code: ${hub.pincode}`,
  );
  for (const bridge of bridges) {
    const state = bridge.paired ? 'paired' : 'not paired yet';
    // The HAP id (HAP-NodeJS's "username", mDNS `id`) is what a controller other than the Home app is given (hub.json [D-8]).
    lines.push(`  bridge "${bridge.name}" on HAP port ${bridge.port ?? '?'}, HAP id ${bridge.username}: ${bridge.accessories} accessories, ${state}`);
  }
  const unpaired = bridges.filter((b) => !b.paired && b.setupURI);
  for (const bridge of unpaired) {
    lines.push('', `Scan with the Home app to add "${bridge.name}" (or enter the code ${hub.pincode}):`);
    lines.push(await qrCode(bridge.setupURI!, 'terminal'));
  }
  lines.push(...(await matterLines(hub)));
  lines.push(...brokerLines(hub.mqttAddress, hub.options.mqtt.kind === 'external', hub.options.ota !== false && !hub.options.otaHost));
  if (hub.webPort !== undefined) {
    const scheme = hub.webTls ? 'https' : 'http';
    lines.push(`Dashboard: ${reachableAddresses(`${scheme}://${hub.options.httpHost}:${hub.webPort}`).join(' or ')}`);
    if (hub.webTls)
      lines.push(
        `  HTTPS certificate ${hub.webTls.certFile}${hub.webTls.generated ? ' (self-signed: your browser asks you to trust it once)' : ''}`,
        `  its SHA-256 fingerprint: ${hub.webTls.fingerprint256} (compare it with what the browser shows)`,
      );
    if (await hub.needsAdmin()) lines.push('  No admin account yet: the first visit to the dashboard creates it (choose the name and password there).');
  }
  lines.push(`  and publish e.g.: HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemperature 20.5`, '');
  return lines.join('\n');
}

/** `--matter`: the manual pairing code and, until a controller has added the bridge, its QR code (docs/matter.md). */
async function matterLines(hub: Hub): Promise<string[]> {
  const matter = hub.matter?.status();
  if (!matter) return [];
  const fabrics = matter.fabrics.length;
  const lines = [
    '',
    `Matter pairing code: ${matter.manualCode} (UDP port ${matter.port ?? '?'}, ${fabrics === 0 ? 'not commissioned yet' : `${fabrics} controller${fabrics === 1 ? '' : 's'}`})`,
  ];
  if (!matter.commissioned) {
    lines.push(`Scan with Google Home, Alexa, SmartThings, Home Assistant or the Home app (QR payload ${matter.qrPayload}):`);
    lines.push(await qrCode(matter.qrPayload, 'terminal'));
  }
  return lines;
}

/** A broker listening on all interfaces is reached at this machine's LAN addresses, not at 0.0.0.0. */
function reachableAddresses(address: string): string[] {
  const url = new URL(address);
  if (url.hostname !== '0.0.0.0' && url.hostname !== '[::]') return [address];
  const port = url.port ? `:${url.port}` : '';
  const lan = lanAddresses().map((a) => `${url.protocol}//${a}${port}`);
  return lan.length > 0 ? lan : [`${url.protocol}//127.0.0.1${port}`];
}

/**
 * Where devices connect. With `--mqtt-url` that is the external broker, as devices reach it: never its
 * credentials, and a broker the hub reaches on loopback is at this machine's LAN address for devices.
 * OTA downloads come from the hub, whose address the broker cannot tell then: `--ota-host` says it.
 */
export function brokerLines(address: string, external: boolean, otaNeedsHost: boolean): string[] {
  if (!external) return [`Devices connect to MQTT at ${reachableAddresses(address).join(' or ')}`];
  const url = new URL(address);
  url.username = '';
  url.password = '';
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) || url.hostname.startsWith('127.');
  if (loopback) url.hostname = '0.0.0.0';
  const shown = reachableAddresses(url.toString().replace(/\/$/, ''));
  const lines = [
    `Devices connect to your MQTT broker at ${shown.join(' or ')}${loopback ? ` (the hub reaches it at ${address.replace(/\/\/[^@/]*@/, '//')})` : ''}`,
  ];
  if (otaNeedsHost)
    lines.push(
      "Warning: OTA needs this machine's address as devices see it, which the external broker cannot tell: start with --ota-host <address>" +
        ` (e.g. --ota-host ${lanAddresses()[0] ?? '192.168.1.10'}), or OTA jobs fail.`,
    );
  return lines;
}

function lanAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && i.family === 'IPv4' && !i.internal)
    .map((i) => i!.address);
}
