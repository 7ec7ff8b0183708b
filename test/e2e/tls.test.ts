/** The optional MQTT-over-TLS listener of the embedded broker. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { connectDevice } from '../helpers/mqtt-device.js';
import { requireTool } from '../helpers/system-tools.js';

describe('MQTT over TLS', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-tls-'));
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts devices on --mqtts-port with the given certificate', async (t) => {
    const openssl = requireTool(t, 'openssl', ['openssl'], 'apt-get install openssl');
    if (!openssl) return;
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      openssl,
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    hub = await startHub({ args: ['--mqtts-port', '0', '--tls-cert', cert, '--tls-key', key] });
    const tlsPort = hub.info.mqtt.tlsPort;
    assert.ok(tlsPort, 'the TLS port is in hub.json');
    const device = await connectDevice(`mqtts://127.0.0.1:${tlsPort}`, 'secure-1', { ca: readFileSync(cert) });
    const errors: string[] = [];
    await device.subscribeAsync('HomeKit/secure-1/$error', { qos: 0 });
    device.on('message', (_topic, payload) => errors.push(payload.toString()));
    await device.publishAsync('HomeKit/secure-1/TemperatureSensor/CurrentTemperature', 'warm', { qos: 1 });
    await eventually(() => errors.some((e) => e.includes("'warm' is not a number")), 5000, "the hub's answer over TLS");
    await device.endAsync();

    const bad = await startHub({ args: ['--mqtts-port', '0', '--tls-cert', join(dir, 'missing.pem'), '--tls-key', key] }).then(
      () => 'started',
      (error: Error) => error.message,
    );
    assert.match(bad, /cannot read the TLS certificate \(--tls-cert\) .*missing\.pem/);
  });
});
