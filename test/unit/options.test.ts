import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { OptionError, resolveStartOptions } from '../../src/cli/options.js';

const dir = mkdtempSync(join(tmpdir(), 'mqttkit-options-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('start options', () => {
  it('uses the documented defaults', () => {
    const { hub, logLevel } = resolveStartOptions({ dataDir: dir }, {});
    assert.deepEqual(hub.mqtt, { kind: 'embedded', host: '0.0.0.0', port: 1883, registration: 'open', authMaxDelayMs: 5000, tls: undefined });
    assert.equal(hub.hapPort, 51826);
    assert.equal(hub.httpPort, 8581);
    assert.equal(hub.bridgeName, 'mqttkit');
    assert.equal(hub.deviceTtlMs, 7 * 86_400_000);
    assert.equal(hub.writeTimeoutMs, 10_000);
    assert.equal(hub.pincode, undefined);
    assert.equal(logLevel, 'info');
  });

  it('lets flags override environment variables, and those the config file', () => {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ mqttPort: 1000, hapPort: 2000, bridgeName: 'From file', deviceTtl: '3d' }));
    const { hub } = resolveStartOptions({ dataDir: dir, mqttPort: '1002' }, { MQTTKIT_MQTT_PORT: '1001', MQTTKIT_HAP_PORT: '2001' });
    assert.equal(hub.mqtt.kind === 'embedded' && hub.mqtt.port, 1002);
    assert.equal(hub.hapPort, 2001);
    assert.equal(hub.bridgeName, 'From file');
    assert.equal(hub.deviceTtlMs, 3 * 86_400_000);
    rmSync(join(dir, 'config.json'));
  });

  const bad: Array<[Record<string, string>, NodeJS.ProcessEnv, RegExp]> = [
    [{ mqttPort: 'abc' }, {}, /--mqtt-port: 'abc' is not valid; expected a port number 0-65535/],
    [{}, { MQTTKIT_HAP_PORT: '70000' }, /--hap-port \(set by MQTTKIT_HAP_PORT\): '70000' is not valid/],
    [{ pincode: '111-11-111' }, {}, /--pincode: '111-11-111' is not valid; expected a setup code like 123-45-654/],
    [{ pincode: '12345678' }, {}, /--pincode/],
    [{ logLevel: 'loud' }, {}, /--log-level: 'loud' is not valid; expected fatal, error, warn, info, debug, trace, silent/],
    [{ deviceTtl: 'forever' }, {}, /--device-ttl: 'forever' is not valid; expected a duration such as 7d/],
    [{ mqttUrl: 'http://x' }, {}, /--mqtt-url: 'http:\/\/x' is not valid/],
    [{ mqttUrl: 'mqtt://x:1883', mqttPort: '1884' }, {}, /--mqtt-url uses an external broker, so --mqtt-port .* has no meaning/],
    [{ bridgeName: 'my_bridge!' }, {}, /--bridge-name/],
    [{ registration: 'maybe' }, {}, /--registration: 'maybe' is not valid; expected open .*, approve .* or closed/],
    [{ mqttUrl: 'mqtt://x:1883', registration: 'open' }, {}, /--registration open needs the embedded broker/],
    [{ mqttsPort: '8883' }, {}, /--mqtts-port, --tls-cert and --tls-key go together/],
  ];
  for (const [flags, env, message] of bad) {
    it(`refuses ${JSON.stringify({ ...flags, ...env })}`, () => {
      assert.throws(() => resolveStartOptions({ dataDir: dir, ...flags }, env), (error: Error) => error instanceof OptionError && message.test(error.message));
    });
  }

  it('names the config file and the fix for broken or unknown settings', () => {
    writeFileSync(join(dir, 'config.json'), '{"mqttPort": 18');
    assert.throws(() => resolveStartOptions({ dataDir: dir }, {}), /config\.json is not valid JSON .*fix it or remove it/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ mqtPort: 1 }));
    assert.throws(() => resolveStartOptions({ dataDir: dir }, {}), /unknown setting "mqtPort"; did you mean 'mqttPort'\?/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ mqttPassword: 'x' }));
    assert.throws(() => resolveStartOptions({ dataDir: dir }, {}), /cannot be set in the config file; use --mqtt-password or MQTTKIT_MQTT_PASSWORD/);
    rmSync(join(dir, 'config.json'));
  });

  it('configures an external broker from --mqtt-url', () => {
    const { hub } = resolveStartOptions({ dataDir: dir, mqttUrl: 'mqtt://broker.local:1883', mqttUsername: 'hub' }, { MQTTKIT_MQTT_PASSWORD: 's3cret' });
    assert.deepEqual(hub.mqtt, { kind: 'external', url: 'mqtt://broker.local:1883', username: 'hub', password: 's3cret' });
  });
});
