import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { OptionError, resolveStartOptions, START_OPTIONS } from '../../src/cli/options.js';

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
      assert.throws(
        () => resolveStartOptions({ dataDir: dir, ...flags }, env),
        (error: Error) => error instanceof OptionError && message.test(error.message),
      );
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

  /** The message for a config.json that holds only `setting`, or 'ok' when it is accepted. */
  function fromFile(setting: Record<string, unknown>): string {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(setting));
    try {
      resolveStartOptions({ dataDir: dir }, {});
      return 'ok';
    } catch (error) {
      if (!(error instanceof OptionError)) throw error;
      return error.message;
    } finally {
      rmSync(join(dir, 'config.json'));
    }
  }

  it('refuses a device TTL that would empty the house: a bare number under a day, or anything under an hour', () => {
    for (const value of ['0', 0, '3600', 3600, '600']) {
      const message = fromFile({ deviceTtl: value });
      assert.match(
        message,
        /^--device-ttl \(set by config\.json "deviceTtl"\): '\d+' is not valid; expected a duration such as 7d or 12h, from 1h to 3650d/,
        String(value),
      );
      assert.match(message, /a bare number counts seconds, so this means \d+ seconds; under 1d write the unit, e\.g\. 12h/);
    }
    assert.match(fromFile({ deviceTtl: '30m' }), /'30m' is not valid; .*\(30m is shorter than the minimum, 1h\)/);
    assert.match(fromFile({ deviceTtl: '0s' }), /\(0ms is shorter than the minimum, 1h\)/);
    assert.match(fromFile({ deviceTtl: '3651d' }), /\(3651d is longer than the maximum, 3650d\)/);
    assert.throws(() => resolveStartOptions({ dataDir: dir, deviceTtl: '5' }, {}), /--device-ttl: '5' is not valid; .*a bare number counts seconds/);
    assert.throws(() => resolveStartOptions({ dataDir: dir }, { MQTTKIT_DEVICE_TTL: '59m' }), /--device-ttl \(set by MQTTKIT_DEVICE_TTL\): '59m' is not valid/);
    for (const [value, ms] of [
      ['1h', 3_600_000],
      ['12h', 43_200_000],
      ['1.5d', 129_600_000],
      ['86400', 86_400_000],
      [604800, 604_800_000],
    ] as const) {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ deviceTtl: value }));
      assert.equal(resolveStartOptions({ dataDir: dir }, {}).hub.deviceTtlMs, ms, String(value));
      rmSync(join(dir, 'config.json'));
    }
  });

  it('keeps every duration within a sane range', () => {
    const cases: Array<[string, string, string, string, string]> = [
      // option, too short, shortest allowed, longest allowed, too long
      ['confirmTimeout', '50ms', '100ms', '5m', '6m'],
      ['authMaxDelay', '10ms', '100ms', '10m', '1h'],
      ['otaRebootTimeout', '1s', '5s', '1h', '2h'],
      ['otaJobDeadline', '5s', '10s', '24h', '25h'],
      ['historyRetention', '10m', '1h', '3650d', '4000d'],
      ['deviceTtl', '59m', '1h', '3650d', '3651d'],
    ];
    for (const [option, short, min, max, long] of cases) {
      assert.match(fromFile({ [option]: short }), /is shorter than the minimum/, `${option} ${short}`);
      assert.equal(fromFile({ [option]: min }), 'ok', `${option} ${min}`);
      assert.equal(fromFile({ [option]: max }), 'ok', `${option} ${max}`);
      assert.match(fromFile({ [option]: long }), /is longer than the maximum/, `${option} ${long}`);
    }
  });

  it('reads numbers in config.json the same whether written as JSON numbers or strings', () => {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ mqttPort: 1883, hapPort: '51830', httpPort: -1, confirmTimeout: 2, authMaxDelay: '2' }));
    const { hub } = resolveStartOptions({ dataDir: dir }, {});
    rmSync(join(dir, 'config.json'));
    assert.equal(hub.mqtt.kind === 'embedded' && hub.mqtt.port, 1883);
    assert.equal(hub.hapPort, 51830);
    assert.equal(hub.httpPort, -1);
    assert.equal(hub.writeTimeoutMs, 2000);
    assert.equal(hub.mqtt.kind === 'embedded' && hub.mqtt.authMaxDelayMs, 2000);
    assert.match(
      fromFile({ mqttPort: 1883.5 }),
      /--mqtt-port \(set by config\.json "mqttPort"\): '1883\.5' is not valid; expected a port number 0-65535 .*e\.g\. 1883 \(not a whole number\)/,
    );
    assert.match(fromFile({ mqttPort: '' }), /--mqtt-port .*'' is not valid/, 'an empty port is not port 0');
    assert.match(fromFile({ hapPort: 70000 }), /'70000' is not valid; .*\(70000 is outside 0-65535\)/);
    assert.match(fromFile({ mqttPort: true }), /--mqtt-port \(set by config\.json "mqttPort"\): true is not valid; .*\(a string or a number, not boolean\)/);
    assert.match(fromFile({ deviceTtl: { days: 7 } }), /--device-ttl .*is not valid; .*\(a string or a number, not object\)/);
    assert.match(fromFile({ bridgeName: null }), /--bridge-name .*\(a string or a number, not null\)/);
  });

  it('shows the allowed range or an example for every setting a person types', () => {
    for (const [name, spec] of Object.entries(START_OPTIONS)) {
      if (['mqttPassword', 'registration', 'logLevel', 'pincode'].includes(name) || 'switch' in spec) continue;
      assert.match(spec.allowed, /e\.g\.|such as/, `${name}: ${spec.allowed}`);
    }
  });

  it('configures an external broker from --mqtt-url', () => {
    const { hub } = resolveStartOptions({ dataDir: dir, mqttUrl: 'mqtt://broker.local:1883', mqttUsername: 'hub' }, { MQTTKIT_MQTT_PASSWORD: 's3cret' });
    assert.deepEqual(hub.mqtt, { kind: 'external', url: 'mqtt://broker.local:1883', username: 'hub', password: 's3cret' });
  });
});
