import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CharacteristicSpec, coerceTyped, coerceValue, formatValue, type HapFormat } from '../../src/core/coerce.js';
import { HapCatalog } from '../../src/homekit/catalog.js';

const catalog = new HapCatalog();
function spec(service: string, characteristic: string): CharacteristicSpec {
  const s = catalog.service(service);
  assert.ok(s.ok, !s.ok ? s.error : '');
  const c = catalog.characteristic(s.value, characteristic);
  assert.ok(c.ok, !c.ok ? c.error : '');
  return c.value;
}
const plain = (format: HapFormat, extra: Partial<CharacteristicSpec> = {}): CharacteristicSpec => ({
  name: 'X',
  uuid: 'x',
  format,
  perms: ['pr', 'ev'],
  ...extra,
});

function accepts(s: CharacteristicSpec, text: string, expected: unknown) {
  const result = coerceValue(s, text);
  assert.ok(result.ok, `expected '${text}' to be accepted for ${s.name}: ${!result.ok ? result.error : ''}`);
  assert.equal(result.value, expected);
}
function refuses(s: CharacteristicSpec, text: string, reason: RegExp) {
  const result = coerceValue(s, text);
  assert.equal(result.ok, false, `expected '${text}' to be refused for ${s.name}`);
  if (!result.ok) assert.match(result.error, reason);
}

describe('value coercion by HAP format', () => {
  it('bool takes 1/0, true/false, on/off in any case', () => {
    const on = spec('Switch', 'On');
    for (const t of ['1', 'true', 'TRUE', 'on', 'On', ' 1 ']) accepts(on, t, true);
    for (const t of ['0', 'false', 'False', 'off', 'OFF']) accepts(on, t, false);
    refuses(on, 'yes', /not a boolean for On: use 1\/0, true\/false or on\/off/);
    refuses(on, '2', /not a boolean/);
  });

  it('float parses fully, rounds to minStep, and refuses out-of-range values', () => {
    const temperature = spec('TemperatureSensor', 'CurrentTemperature');
    accepts(temperature, '20', 20);
    accepts(temperature, '20.125', 20.1);
    accepts(temperature, '-5.46', -5.5);
    accepts(temperature, '1e1', 10);
    refuses(temperature, '20C', /not a number for CurrentTemperature/);
    refuses(temperature, '', /not a number/);
    refuses(temperature, 'NaN', /not a number/);
    refuses(temperature, '101', /out of range for CurrentTemperature: allowed -270..100 celsius/);
    refuses(temperature, '-300', /out of range/);
  });

  it('uint8 keeps to min/max and validValues (enums)', () => {
    const humidity = spec('HumiditySensor', 'CurrentRelativeHumidity');
    accepts(humidity, '58', 58);
    accepts(humidity, '57.6', 58);
    refuses(humidity, '101', /out of range/);
    const target = spec('Thermostat', 'TargetHeatingCoolingState');
    accepts(target, '3', 3);
    refuses(target, '4', /out of range|not a valid/);
    const button = spec('StatelessProgrammableSwitch', 'ProgrammableSwitchEvent');
    accepts(button, '2', 2);
  });

  it('enum with gaps refuses numbers between valid ones', () => {
    refuses(plain('uint8', { minValue: 0, maxValue: 3, validValues: [0, 1, 3] }), '2', /use one of 0, 1, 3/);
  });

  it('integer formats carry their own range when the characteristic sets none', () => {
    accepts(plain('uint16'), '65535', 65535);
    refuses(plain('uint16'), '65536', /out of range/);
    refuses(plain('uint8'), '-1', /out of range/);
    accepts(plain('uint32'), '4294967295', 4294967295);
    refuses(plain('uint32'), '4294967296', /out of range/);
    accepts(plain('uint64'), '9007199254740991', 9007199254740991);
    accepts(plain('int'), '-2147483648', -2147483648);
    refuses(plain('int'), '2147483648', /out of range/);
    accepts(plain('int'), '4.6', 5);
  });

  it('validValueRanges narrows the range', () => {
    refuses(plain('uint8', { validValueRanges: [10, 20] }), '21', /use 10..20/);
  });

  it('string keeps to maxLen and refuses control characters', () => {
    accepts(plain('string', { maxLen: 5 }), 'hello', 'hello');
    refuses(plain('string', { maxLen: 5 }), 'hello!', /at most 5 characters/);
    accepts(plain('string'), 'x'.repeat(64), 'x'.repeat(64));
    refuses(plain('string'), 'x'.repeat(65), /at most 64/);
    refuses(plain('string'), 'a\nb', /control characters/);
  });

  it('tlv8 and data take base64', () => {
    accepts(plain('tlv8'), 'AQID', 'AQID');
    accepts(plain('data'), 'AQI=', 'AQI=');
    refuses(plain('data'), 'not base64!', /base64/);
    refuses(plain('data', { maxDataLen: 2 }), 'AQID', /at most 2 bytes/);
  });

  it('typed writes follow the same rules', () => {
    const brightness = spec('Lightbulb', 'Brightness');
    assert.deepEqual(coerceTyped(brightness, 40), { ok: true, value: 40 });
    assert.equal(coerceTyped(brightness, 140).ok, false);
    assert.deepEqual(coerceTyped(spec('Switch', 'On'), false), { ok: true, value: false });
    assert.equal(coerceTyped(spec('Switch', 'On'), null).ok, false);
  });

  it('formats bools as 1/0 for /set topics', () => {
    assert.equal(formatValue(true), '1');
    assert.equal(formatValue(false), '0');
    assert.equal(formatValue(21.5), '21.5');
  });
});
