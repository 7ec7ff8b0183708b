/** What `mqttkit start` prints for people: the setup code, a QR code to scan, and where devices connect. */
import QRCode from 'qrcode';
import type { Hub } from '../hub/hub.js';

export async function startBanner(hub: Hub): Promise<string> {
  const lines: string[] = [];
  const bridges = hub.bridges();
  lines.push('', `mqttkit is running. HomeKit setup code: ${hub.pincode}`);
  for (const bridge of bridges) {
    const state = bridge.paired ? 'paired' : 'not paired yet';
    lines.push(`  bridge "${bridge.name}" on HAP port ${bridge.port ?? '?'}: ${bridge.accessories} accessories, ${state}`);
  }
  const unpaired = bridges.filter((b) => !b.paired && b.setupURI);
  for (const bridge of unpaired) {
    lines.push('', `Scan with the Home app to add "${bridge.name}" (or enter the code ${hub.pincode}):`);
    lines.push(await QRCode.toString(bridge.setupURI!, { type: 'terminal', small: true }));
  }
  lines.push(`Devices connect to MQTT at ${hub.mqttAddress}`);
  lines.push(`  and publish e.g.: HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemperature 20.5`, '');
  return lines.join('\n');
}
