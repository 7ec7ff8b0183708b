import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceFieldTopic, parseTopic, setTopic, valueTopic } from '../../src/core/topic.js';

describe('topic grammar', () => {
  it('parses a state topic', () => {
    assert.deepEqual(parseTopic('HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemperature'), {
      ok: true,
      value: { kind: 'value', deviceId: 'esp8266_12345678', service: 'TemperatureSensor', index: 0, characteristic: 'CurrentTemperature' },
    });
  });

  it('parses an indexed service', () => {
    const parsed = parseTopic('HomeKit/relay-2/Switch/2/On');
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, { kind: 'value', deviceId: 'relay-2', service: 'Switch', index: 2, characteristic: 'On' });
  });

  it('takes every HAP-NodeJS characteristic name, PM2_5Density included', () => {
    const parsed = parseTopic('HomeKit/air-1/AirQualitySensor/PM2_5Density');
    assert.ok(parsed.ok && parsed.value.kind === 'value' && parsed.value.characteristic === 'PM2_5Density');
  });

  it("recognises the hub's own /set topics, plain and indexed", () => {
    const plain = parseTopic('HomeKit/TEST/Switch/On/set');
    assert.ok(plain.ok);
    assert.equal(plain.value.kind, 'set');
    const indexed = parseTopic('HomeKit/TEST/Switch/3/On/set');
    assert.ok(indexed.ok);
    assert.deepEqual(indexed.value, { kind: 'set', deviceId: 'TEST', service: 'Switch', index: 3, characteristic: 'On' });
  });

  it("parses metadata, $state and the hub's $error", () => {
    for (const field of ['name', 'manufacturer', 'model', 'firmware'] as const) {
      const parsed = parseTopic(`HomeKit/dev/$${field}`);
      assert.ok(parsed.ok);
      assert.deepEqual(parsed.value, { kind: 'meta', deviceId: 'dev', field });
    }
    assert.deepEqual(parseTopic('HomeKit/dev/$state'), { ok: true, value: { kind: 'state', deviceId: 'dev' } });
    assert.deepEqual(parseTopic('HomeKit/dev/$error'), { ok: true, value: { kind: 'hub-output', deviceId: 'dev' } });
  });

  const refusals: Array<[string, RegExp]> = [
    ['HomeKit/dev/TemperatureSensor', /too few levels/],
    ['HomeKit/dev', /too few levels/],
    ['HomeKit/dev/A/1/B/C/D', /too many levels/],
    ['HomeKit/dev//On', /empty topic level/],
    ['HomeKit/bad.id/Switch/On', /device id 'bad.id' is invalid/],
    ['HomeKit/' + 'x'.repeat(65) + '/Switch/On', /device id .* is invalid/],
    ['HomeKit/dev/Switch/0/On', /not a service index/],
    ['HomeKit/dev/Switch/100/On', /not a service index/],
    ['HomeKit/dev/Switch/abc/On', /not a service index/],
    ['HomeKit/dev/$nme', /unknown field '\$nme'.*did you mean '\$name'/],
    ['HomeKit/dev/$name/extra', /takes no further levels/],
    ['HomeKit/dev/Swi-tch/On', /not a service type name/],
    ['Other/dev/Switch/On', /not under HomeKit/],
    // [P-2] ids that name the hub's topics, in any case
    ['HomeKit/OTA/Switch/On', /device id 'OTA' is reserved/],
    ['HomeKit/homekit/Switch/On', /device id 'homekit' is reserved/],
    ['HomeKit/Stat/$name', /device id 'Stat' is reserved/],
    ['HomeKit/tele/Switch/On', /reserved/],
    ['HomeKit/cmnd/Switch/On', /reserved/],
    // [P-4] names are bounded before a did-you-mean search runs on them
    ['HomeKit/dev/' + 'S'.repeat(65) + '/On', /service type name of 65 characters is too long/],
    ['HomeKit/dev/Switch/' + 'O'.repeat(60_000), /characteristic name of 60000 characters is too long/],
  ];
  for (const [topic, expected] of refusals) {
    it(`refuses ${topic.slice(0, 40)}`, () => {
      const parsed = parseTopic(topic);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.match(parsed.error, expected);
    });
  }

  it('keeps every refusal short, whatever the device sent', () => {
    for (const topic of [
      `HomeKit/dev/${'x'.repeat(60_000)}/On`,
      `HomeKit/dev/$${'n'.repeat(60_000)}`,
      `HomeKit/${'d'.repeat(60_000)}/Switch/On`,
      `HomeKit/dev/Switch/${'7'.repeat(60_000)}/On`,
    ]) {
      const parsed = parseTopic(topic);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.ok(parsed.error.length < 400, `${parsed.error.length} characters: ${parsed.error.slice(0, 200)}`);
    }
  });

  it('keeps the device id of a refused topic so the device can be told', () => {
    const parsed = parseTopic('HomeKit/dev/TemperatureSensor');
    assert.equal(parsed.deviceId, 'dev');
  });

  it('formats the topics the hub publishes', () => {
    assert.equal(setTopic('TEST', { service: 'Switch', index: 0 }, 'On'), 'HomeKit/TEST/Switch/On/set');
    assert.equal(setTopic('TEST', { service: 'Switch', index: 2 }, 'On'), 'HomeKit/TEST/Switch/2/On/set');
    assert.equal(valueTopic('d', { service: 'Lightbulb', index: 0 }, 'Brightness'), 'HomeKit/d/Lightbulb/Brightness');
    assert.equal(deviceFieldTopic('d', 'error'), 'HomeKit/d/$error');
  });

  it('round-trips: what the hub formats, it parses back to the same address', () => {
    const parsed = parseTopic(valueTopic('d-1', { service: 'Outlet', index: 7 }, 'OutletInUse'));
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, { kind: 'value', deviceId: 'd-1', service: 'Outlet', index: 7, characteristic: 'OutletInUse' });
  });
});
