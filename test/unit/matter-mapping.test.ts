/**
 * The HomeKit → Matter mapping (docs/matter.md [M-1]–[M-4]): units, ranges and rounding both ways, and
 * the rule that a value outside the Matter attribute's range is refused, never clamped or passed on
 * ([M-3], the same rule as HAP's): checked on every value HomeKit allows, with fast-check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { HapValue } from '../../src/core/coerce.js';
import {
  brightnessToLevel,
  celsiusToMatter,
  fromMatter,
  humidityToMatter,
  LEVEL_MAX,
  LEVEL_MIN,
  LockState,
  levelToBrightness,
  liftToPosition,
  lockStateToMatter,
  MAPPED_SERVICES,
  miredsToMatter,
  positionToLift,
  shapeOf,
  toMatter,
} from '../../src/matter/mapping.js';

const value = (service: string, characteristic: string, v: HapValue) => {
  const result = toMatter(service, characteristic, v);
  assert.ok(result, `${service}/${characteristic} maps`);
  return result;
};
const exposed = (service: string, characteristic: string, v: HapValue) => {
  const result = value(service, characteristic, v);
  assert.ok(result.ok, !result.ok ? result.error : '');
  return result.value;
};
const refused = (service: string, characteristic: string, v: HapValue) => {
  const result = value(service, characteristic, v);
  assert.equal(result.ok, false, `${service}/${characteristic} ${String(v)} must not reach a controller`);
};

describe('Matter mapping: device types', () => {
  it('maps the services of the docs/matter.md table and no other', () => {
    assert.deepEqual([...MAPPED_SERVICES].sort(), [
      'ContactSensor',
      'HumiditySensor',
      'Lightbulb',
      'LockMechanism',
      'MotionSensor',
      'OccupancySensor',
      'Outlet',
      'Switch',
      'TemperatureSensor',
      'Thermostat',
      'WindowCovering',
    ]);
    assert.equal(shapeOf('Fan', ['On']), undefined);
    assert.equal(shapeOf('StatelessProgrammableSwitch', []), undefined);
  });

  it('makes a light on/off, dimmable or colour-temperature by the characteristics it has', () => {
    assert.deepEqual(shapeOf('Lightbulb', ['On']), { kind: 'light', dimmable: false, colorTemperature: false });
    assert.deepEqual(shapeOf('Lightbulb', ['On', 'Brightness']), { kind: 'light', dimmable: true, colorTemperature: false });
    assert.deepEqual(shapeOf('Lightbulb', ['On', 'ColorTemperature']), { kind: 'light', dimmable: true, colorTemperature: true });
    assert.deepEqual(shapeOf('Switch', ['On']), { kind: 'plug' });
    assert.deepEqual(shapeOf('Outlet', ['On', 'OutletInUse']), { kind: 'plug' });
  });

  it('leaves characteristics without a Matter counterpart out (not an error)', () => {
    assert.equal(toMatter('WindowCovering', 'PositionState', 2), undefined);
    assert.equal(toMatter('Outlet', 'OutletInUse', true), undefined);
    assert.equal(toMatter('Thermostat', 'TemperatureDisplayUnits', 0), undefined);
    assert.equal(toMatter('Fan', 'On', true), undefined);
  });
});

describe('Matter mapping: values HomeKit → Matter ([M-2], [M-3])', () => {
  it('temperature in 0.01 °C, rounded half away from zero; beyond int16 or below absolute zero refused', () => {
    assert.deepEqual(exposed('TemperatureSensor', 'CurrentTemperature', 21.5), { temperatureMeasurement: { measuredValue: 2150 } });
    assert.deepEqual(exposed('TemperatureSensor', 'CurrentTemperature', -3.255), { temperatureMeasurement: { measuredValue: -326 } });
    assert.deepEqual(exposed('TemperatureSensor', 'CurrentTemperature', 0.005), { temperatureMeasurement: { measuredValue: 1 } });
    assert.deepEqual(exposed('Thermostat', 'CurrentTemperature', 19), { thermostat: { localTemperature: 1900 } });
    for (const bad of [-273.2, 327.68, 1000, Number.NaN, Number.POSITIVE_INFINITY]) refused('TemperatureSensor', 'CurrentTemperature', bad);
    refused('TemperatureSensor', 'CurrentTemperature', 'warm');
    fc.assert(
      fc.property(fc.double({ min: -270, max: 100, noNaN: true }), (c) => {
        const r = celsiusToMatter(c);
        return r.ok && Number.isInteger(r.value) && Math.abs(r.value / 100 - c) <= 0.005 + 1e-9;
      }),
    );
  });

  it('humidity in 0.01 %, 0–10000', () => {
    assert.deepEqual(exposed('HumiditySensor', 'CurrentRelativeHumidity', 40), { relativeHumidityMeasurement: { measuredValue: 4000 } });
    assert.deepEqual(humidityToMatter(100), { ok: true, value: 10000 });
    refused('HumiditySensor', 'CurrentRelativeHumidity', 100.01);
    refused('HumiditySensor', 'CurrentRelativeHumidity', -1);
  });

  it('brightness 0–100 % → level 1–254 (0 % is the lowest level, never 0), monotonic; outside 0–100 refused', () => {
    const level = (b: number) => {
      const r = brightnessToLevel(b);
      assert.ok(r.ok);
      return r.value;
    };
    assert.equal(level(0), LEVEL_MIN);
    assert.equal(level(100), LEVEL_MAX);
    assert.equal(level(50), 127);
    for (const bad of [-1, 100.5, Number.NaN]) assert.equal(brightnessToLevel(bad).ok, false);
    refused('Lightbulb', 'Brightness', 101);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 99 }), (b) => {
        const [a, c] = [level(b), level(b + 1)];
        return a >= LEVEL_MIN && c <= LEVEL_MAX && a <= c;
      }),
    );
  });

  it('level → brightness and back lands within one level (the controller sees what it asked for)', () => {
    fc.assert(
      fc.property(fc.integer({ min: LEVEL_MIN, max: LEVEL_MAX }), (l) => {
        const b = levelToBrightness(l);
        if (!b.ok || b.value < 1 || b.value > 100) return false;
        const back = brightnessToLevel(b.value);
        return back.ok && Math.abs(back.value - l) <= 2;
      }),
    );
    for (const bad of [0, 255, 12.5]) assert.equal(levelToBrightness(bad).ok, false);
  });

  it('colour temperature in mireds both sides, within the announced 140–500', () => {
    assert.deepEqual(exposed('Lightbulb', 'ColorTemperature', 300), { colorControl: { colorTemperatureMireds: 300 } });
    assert.equal(miredsToMatter(139).ok, false);
    assert.equal(miredsToMatter(501).ok, false);
  });

  it('contact: HomeKit 0 (detected) is BooleanState true; motion and occupancy become OccupancySensing', () => {
    assert.deepEqual(exposed('ContactSensor', 'ContactSensorState', 0), { booleanState: { stateValue: true } });
    assert.deepEqual(exposed('ContactSensor', 'ContactSensorState', 1), { booleanState: { stateValue: false } });
    refused('ContactSensor', 'ContactSensorState', 2);
    assert.deepEqual(exposed('MotionSensor', 'MotionDetected', true), { occupancySensing: { occupancy: { occupied: true } } });
    assert.deepEqual(exposed('OccupancySensor', 'OccupancyDetected', 0), { occupancySensing: { occupancy: { occupied: false } } });
  });

  it('window covering: % open → lift in 0.01 % closed', () => {
    assert.deepEqual(exposed('WindowCovering', 'CurrentPosition', 30), { windowCovering: { currentPositionLiftPercent100ths: 7000 } });
    assert.deepEqual(exposed('WindowCovering', 'TargetPosition', 100), { windowCovering: { targetPositionLiftPercent100ths: 0 } });
    assert.equal(positionToLift(101).ok, false);
    fc.assert(fc.property(fc.integer({ min: 0, max: 100 }), (p) => liftToPosition((positionToLift(p) as { value: number }).value).ok));
  });

  it('lock: secured/unsecured/jammed/unknown → Locked/Unlocked/NotFullyLocked/null; others refused', () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((s) => lockStateToMatter(s)),
      [
        { ok: true, value: LockState.Unlocked },
        { ok: true, value: LockState.Locked },
        { ok: true, value: LockState.NotFullyLocked },
        { ok: true, value: null },
      ],
    );
    refused('LockMechanism', 'LockCurrentState', 4);
  });

  it('thermostat: heating setpoint 10–38 °C, mode off/heat only (cool and auto are refused, not shown as heat)', () => {
    assert.deepEqual(exposed('Thermostat', 'TargetTemperature', 21.5), { thermostat: { occupiedHeatingSetpoint: 2150 } });
    assert.deepEqual(exposed('Thermostat', 'TargetHeatingCoolingState', 1), { thermostat: { systemMode: 4 } });
    assert.deepEqual(exposed('Thermostat', 'TargetHeatingCoolingState', 0), { thermostat: { systemMode: 0 } });
    refused('Thermostat', 'TargetHeatingCoolingState', 2);
    refused('Thermostat', 'TargetHeatingCoolingState', 3);
    refused('Thermostat', 'TargetTemperature', 9.5);
  });
});

describe('Matter mapping: controller writes → HomeKit writes ([M-4])', () => {
  it('turns the writable attributes into the characteristic HomeKit writes', () => {
    assert.deepEqual(fromMatter('Switch', 'onOff', 'onOff', true), { ok: true, value: { characteristic: 'On', value: true } });
    assert.deepEqual(fromMatter('Lightbulb', 'levelControl', 'currentLevel', 254), { ok: true, value: { characteristic: 'Brightness', value: 100 } });
    assert.deepEqual(fromMatter('Lightbulb', 'colorControl', 'colorTemperatureMireds', 250), {
      ok: true,
      value: { characteristic: 'ColorTemperature', value: 250 },
    });
    assert.deepEqual(fromMatter('WindowCovering', 'windowCovering', 'targetPositionLiftPercent100ths', 2500), {
      ok: true,
      value: { characteristic: 'TargetPosition', value: 75 },
    });
    assert.deepEqual(fromMatter('LockMechanism', 'doorLock', 'lockState', LockState.Locked), {
      ok: true,
      value: { characteristic: 'LockTargetState', value: 1 },
    });
    assert.deepEqual(fromMatter('LockMechanism', 'doorLock', 'lockState', LockState.Unlocked), {
      ok: true,
      value: { characteristic: 'LockTargetState', value: 0 },
    });
    assert.deepEqual(fromMatter('Thermostat', 'thermostat', 'occupiedHeatingSetpoint', 2250), {
      ok: true,
      value: { characteristic: 'TargetTemperature', value: 22.5 },
    });
    assert.deepEqual(fromMatter('Thermostat', 'thermostat', 'systemMode', 0), { ok: true, value: { characteristic: 'TargetHeatingCoolingState', value: 0 } });
  });

  it('refuses what the device could not take, and ignores what is not a write', () => {
    assert.equal(fromMatter('Lightbulb', 'levelControl', 'currentLevel', 0)?.ok, false);
    assert.equal(fromMatter('Thermostat', 'thermostat', 'occupiedHeatingSetpoint', 4000)?.ok, false);
    assert.equal(fromMatter('Thermostat', 'thermostat', 'systemMode', 3)?.ok, false);
    assert.equal(fromMatter('Switch', 'onOff', 'onOff', 1)?.ok, false);
    assert.equal(fromMatter('TemperatureSensor', 'temperatureMeasurement', 'measuredValue', 2000), undefined);
    assert.equal(fromMatter('LockMechanism', 'doorLock', 'lockState', null), undefined);
  });
});
