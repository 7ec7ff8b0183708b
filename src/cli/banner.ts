/** What `mqttkit start` prints for people: the setup code, a QR code to scan, and where devices connect. */
import { networkInterfaces } from 'node:os';
import type { Hub } from '../hub/hub.js';
import { qrCode } from '../web/qr-code.js';

export async function startBanner(hub: Hub): Promise<string> {
  const lines: string[] = [];
  const bridges = hub.bridges();
  lines.push(
    '',
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
  lines.push(`Devices connect to MQTT at ${reachableAddresses(hub.mqttAddress).join(' or ')}`);
  if (hub.webPort !== undefined) lines.push(`Dashboard: ${reachableAddresses(`http://${hub.options.httpHost}:${hub.webPort}`).join(' or ')}`);
  lines.push(`  and publish e.g.: HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemperature 20.5`, '');
  return lines.join('\n');
}

/** A broker listening on all interfaces is reached at this machine's LAN addresses, not at 0.0.0.0. */
function reachableAddresses(address: string): string[] {
  const url = new URL(address);
  if (url.hostname !== '0.0.0.0' && url.hostname !== '[::]') return [address];
  const lan = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && i.family === 'IPv4' && !i.internal)
    .map((i) => `${url.protocol}//${i!.address}:${url.port}`);
  return lan.length > 0 ? lan : [`${url.protocol}//127.0.0.1:${url.port}`];
}
