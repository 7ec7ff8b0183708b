/**
 * The HomeKit → Matter mapping (docs/matter.md, the table): which Matter device type a HomeKit service
 * becomes, and how each characteristic value turns into a cluster attribute and back. Pure: no
 * matter.js here, so every range and rounding rule is unit-tested. A value that does not fit the
 * Matter attribute is refused, never clamped (see [M-3]): invalid data never reaches a controller.
 */
import type { HapValue } from '../core/coerce.js';
import { fail, ok, type Result } from '../core/result.js';

/** The Matter device types the bridge exposes (one child endpoint per mapped service). */
export type MatterKind = 'temperature' | 'humidity' | 'contact' | 'occupancy' | 'light' | 'plug' | 'cover' | 'lock' | 'thermostat';

/** What decides an endpoint's device type and features; a change of shape rebuilds the endpoint (same number). */
export interface MatterShape {
  kind: MatterKind;
  /** Lightbulb: LevelControl (Brightness present). */
  dimmable?: boolean;
  /** Lightbulb: ColorControl with colour temperature (ColorTemperature present). */
  colorTemperature?: boolean;
}

/** A cluster attribute patch: `{ cluster: { attribute: value } }`, as matter.js's `endpoint.set` takes it. */
export type AttributePatch = Record<string, Record<string, unknown>>;

/** HomeKit services that map, and their device type ([M-1]). */
const KINDS: Record<string, MatterKind> = {
  TemperatureSensor: 'temperature',
  HumiditySensor: 'humidity',
  ContactSensor: 'contact',
  MotionSensor: 'occupancy',
  OccupancySensor: 'occupancy',
  Lightbulb: 'light',
  Switch: 'plug',
  Outlet: 'plug',
  WindowCovering: 'cover',
  LockMechanism: 'lock',
  Thermostat: 'thermostat',
};

/** The HomeKit services the bridge maps (docs/matter.md lists what does not). */
export const MAPPED_SERVICES: readonly string[] = Object.keys(KINDS);

/** The shape of a service given the characteristics it has reported; undefined: the service does not map. */
export function shapeOf(service: string, characteristics: Iterable<string>): MatterShape | undefined {
  const kind = KINDS[service];
  if (!kind) return undefined;
  if (kind !== 'light') return { kind };
  const present = new Set(characteristics);
  return { kind, dimmable: present.has('Brightness') || present.has('ColorTemperature'), colorTemperature: present.has('ColorTemperature') };
}

export function sameShape(a: MatterShape, b: MatterShape): boolean {
  return a.kind === b.kind && a.dimmable === b.dimmable && a.colorTemperature === b.colorTemperature;
}

// [M-2] Units and ranges of the Matter attributes (Matter 1.3 Application Cluster spec).
/** TemperatureMeasurement / Thermostat: int16 in 0.01 °C; -273.15 °C is the physical floor. */
export const TEMPERATURE_MIN = -27315;
export const TEMPERATURE_MAX = 32767;
/** LevelControl: 1–254 (0 and 255 are not levels a lighting device reports). */
export const LEVEL_MIN = 1;
export const LEVEL_MAX = 254;
/** The colour temperature range the bridge announces: HomeKit's ColorTemperature range, in mireds. */
export const MIREDS_MIN = 140;
export const MIREDS_MAX = 500;
/** Thermostat heating setpoint limits: HomeKit's TargetTemperature range (10–38 °C), in 0.01 °C. */
export const SETPOINT_MIN = 1000;
export const SETPOINT_MAX = 3800;

/** DoorLock.LockState. */
export const LockState = { NotFullyLocked: 0, Locked: 1, Unlocked: 2 } as const;
/** Thermostat.SystemMode values the bridge uses (the Heating feature only). */
export const SystemMode = { Off: 0, Heat: 4 } as const;

const num = (value: HapValue): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
const bool = (value: HapValue): boolean | undefined => (typeof value === 'boolean' ? value : typeof value === 'number' ? value !== 0 : undefined);

function inRange(name: string, value: number, min: number, max: number): Result<number> {
  return Number.isInteger(value) && value >= min && value <= max ? ok(value) : fail(`${name} ${value} is outside the Matter range ${min}–${max}`);
}

/** °C → 0.01 °C, rounded half away from zero; outside int16 (or below absolute zero) refused. */
export function celsiusToMatter(celsius: number): Result<number> {
  if (!Number.isFinite(celsius)) return fail(`temperature ${celsius} is not a number`);
  return inRange('temperature (0.01 °C)', Math.sign(celsius) * Math.round(Math.abs(celsius) * 100), TEMPERATURE_MIN, TEMPERATURE_MAX);
}

/** 0.01 °C → °C. */
export const matterToCelsius = (hundredths: number): number => hundredths / 100;

/** Relative humidity %, 0–100 → 0.01 %, 0–10000. */
export function humidityToMatter(percent: number): Result<number> {
  if (!Number.isFinite(percent)) return fail(`humidity ${percent} is not a number`);
  return inRange('humidity (0.01 %)', Math.round(percent * 100), 0, 10000);
}

/** HomeKit Brightness 0–100 % → LevelControl 1–254 (0 % is the lowest level: on/off is its own attribute). */
export function brightnessToLevel(percent: number): Result<number> {
  if (!Number.isFinite(percent) || percent < 0 || percent > 100) return fail(`brightness ${percent} is outside 0–100 %`);
  return ok(Math.min(LEVEL_MAX, Math.max(LEVEL_MIN, Math.round((percent * LEVEL_MAX) / 100))));
}

/** LevelControl 1–254 → Brightness 1–100 % (a level that is on is never 0 %). */
export function levelToBrightness(level: number): Result<number> {
  const checked = inRange('level', level, LEVEL_MIN, LEVEL_MAX);
  if (!checked.ok) return checked;
  return ok(Math.max(1, Math.round((level * 100) / LEVEL_MAX)));
}

/** Mireds both sides; Matter's colour temperature is bounded by the announced physical range. */
export function miredsToMatter(mireds: number): Result<number> {
  return inRange('colour temperature (mireds)', Math.round(mireds), MIREDS_MIN, MIREDS_MAX);
}

/** HomeKit position (0 closed – 100 % open) → Matter lift (0 open – 10000 closed, in 0.01 %). */
export function positionToLift(percentOpen: number): Result<number> {
  if (!Number.isFinite(percentOpen) || percentOpen < 0 || percentOpen > 100) return fail(`position ${percentOpen} is outside 0–100 %`);
  return ok(Math.round((100 - percentOpen) * 100));
}

/** Matter lift (0.01 % closed) → HomeKit position (% open), whole percent. */
export function liftToPosition(lift100ths: number): Result<number> {
  const checked = inRange('lift (0.01 %)', lift100ths, 0, 10000);
  if (!checked.ok) return checked;
  return ok(100 - Math.round(lift100ths / 100));
}

/** HomeKit LockCurrentState (0 unsecured, 1 secured, 2 jammed, 3 unknown) → DoorLock.LockState (null: unknown). */
export function lockStateToMatter(state: number): Result<number | null> {
  switch (state) {
    case 0:
      return ok(LockState.Unlocked);
    case 1:
      return ok(LockState.Locked);
    case 2:
      return ok(LockState.NotFullyLocked); // jammed: Matter has no "jammed" state, the alarm event is not sent
    case 3:
      return ok(null);
    default:
      return fail(`lock state ${state} is not one of HomeKit's 0–3`);
  }
}

/** HomeKit TargetHeatingCoolingState → SystemMode: only off and heat map (the Heating feature). */
export function heatingModeToMatter(mode: number): Result<number> {
  if (mode === 0) return ok(SystemMode.Off);
  if (mode === 1) return ok(SystemMode.Heat);
  return fail(`heating/cooling mode ${mode} (cool or auto) does not map: the bridge's thermostat heats only`);
}

export function systemModeToHomeKit(mode: number): Result<number> {
  if (mode === SystemMode.Off) return ok(0);
  if (mode === SystemMode.Heat) return ok(1);
  return fail(`system mode ${mode} is not one the bridge offers (off, heat)`);
}

/**
 * One characteristic value → the attribute patch for its service's endpoint. `undefined`: the
 * characteristic has no Matter counterpart (it is simply not exposed); a failure: the value does not
 * fit the Matter attribute and must not be exposed ([M-3]).
 */
export function toMatter(service: string, characteristic: string, value: HapValue): Result<AttributePatch> | undefined {
  const kind = KINDS[service];
  const n = num(value);
  const b = bool(value);
  const patch = (cluster: string, attribute: string, result: Result<unknown>): Result<AttributePatch> =>
    result.ok ? ok({ [cluster]: { [attribute]: result.value } }) : result;
  const need = <T>(v: T | undefined, what: string): Result<T> => (v === undefined ? fail(`${characteristic} ${String(value)} is not ${what}`) : ok(v));
  const then = <T, U>(r: Result<T>, f: (t: T) => Result<U>): Result<U> => (r.ok ? f(r.value) : r);
  switch (`${kind}/${characteristic}`) {
    case 'temperature/CurrentTemperature':
      return patch('temperatureMeasurement', 'measuredValue', then(need(n, 'a number'), celsiusToMatter));
    case 'humidity/CurrentRelativeHumidity':
      return patch('relativeHumidityMeasurement', 'measuredValue', then(need(n, 'a number'), humidityToMatter));
    case 'contact/ContactSensorState':
      // HomeKit 0 = contact detected (closed); Matter BooleanState true = contact.
      return patch(
        'booleanState',
        'stateValue',
        then(need(n, 'a number'), (v) => (v === 0 || v === 1 ? ok(v === 0) : fail(`contact state ${v} is not 0 or 1`))),
      );
    case 'occupancy/MotionDetected':
    case 'occupancy/OccupancyDetected':
      return patch(
        'occupancySensing',
        'occupancy',
        then(need(b, 'a boolean'), (v) => ok({ occupied: v })),
      );
    case 'light/On':
    case 'plug/On':
      return patch('onOff', 'onOff', need(b, 'a boolean'));
    case 'light/Brightness':
      return patch('levelControl', 'currentLevel', then(need(n, 'a number'), brightnessToLevel));
    case 'light/ColorTemperature':
      return patch('colorControl', 'colorTemperatureMireds', then(need(n, 'a number'), miredsToMatter));
    case 'cover/CurrentPosition':
      return patch('windowCovering', 'currentPositionLiftPercent100ths', then(need(n, 'a number'), positionToLift));
    case 'cover/TargetPosition':
      return patch('windowCovering', 'targetPositionLiftPercent100ths', then(need(n, 'a number'), positionToLift));
    case 'lock/LockCurrentState':
      return patch('doorLock', 'lockState', then(need(n, 'a number'), lockStateToMatter));
    case 'thermostat/CurrentTemperature':
      return patch('thermostat', 'localTemperature', then(need(n, 'a number'), celsiusToMatter));
    case 'thermostat/TargetTemperature':
      return patch(
        'thermostat',
        'occupiedHeatingSetpoint',
        then(then(need(n, 'a number'), celsiusToMatter), (v) => inRange('heating setpoint (0.01 °C)', v, SETPOINT_MIN, SETPOINT_MAX)),
      );
    case 'thermostat/TargetHeatingCoolingState':
      return patch('thermostat', 'systemMode', then(need(n, 'a number'), heatingModeToMatter));
    default:
      return undefined;
  }
}

/** A Matter write/command as the HomeKit write it becomes: `HomeKit/<id>/<Service>/<Char>/set <value>` ([M-4]). */
export interface HomeKitWrite {
  characteristic: string;
  value: HapValue;
}

/**
 * A controller changed an attribute of a mapped endpoint → the HomeKit write, or undefined when that
 * attribute is not one a write goes through for (the change stays local to Matter's own bookkeeping).
 */
export function fromMatter(service: string, cluster: string, attribute: string, value: unknown): Result<HomeKitWrite> | undefined {
  const kind = KINDS[service];
  const n = typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  const write = (characteristic: string, result: Result<HapValue>): Result<HomeKitWrite> => (result.ok ? ok({ characteristic, value: result.value }) : result);
  const need = (what: string): Result<number> => (n === undefined ? fail(`${cluster}.${attribute} ${String(value)} is not ${what}`) : ok(n));
  switch (`${kind}/${cluster}.${attribute}`) {
    case 'light/onOff.onOff':
    case 'plug/onOff.onOff':
      return typeof value === 'boolean' ? ok({ characteristic: 'On', value }) : fail(`onOff ${String(value)} is not a boolean`);
    case 'light/levelControl.currentLevel': {
      const level = need('a level');
      return write('Brightness', level.ok ? levelToBrightness(level.value) : level);
    }
    case 'light/colorControl.colorTemperatureMireds': {
      const mireds = need('mireds');
      return write('ColorTemperature', mireds.ok ? miredsToMatter(mireds.value) : mireds);
    }
    case 'cover/windowCovering.targetPositionLiftPercent100ths': {
      const lift = need('a lift percentage');
      return write('TargetPosition', lift.ok ? liftToPosition(lift.value) : lift);
    }
    case 'lock/doorLock.lockState':
      // lockDoor / unlockDoor set lockState: the target the device is asked to reach.
      if (value === LockState.Locked) return ok(lockCommandToHomeKit(true));
      if (value === LockState.Unlocked) return ok(lockCommandToHomeKit(false));
      return undefined;
    case 'thermostat/thermostat.occupiedHeatingSetpoint': {
      const setpoint = need('a setpoint');
      if (!setpoint.ok) return setpoint;
      const checked = inRange('heating setpoint (0.01 °C)', setpoint.value, SETPOINT_MIN, SETPOINT_MAX);
      return write('TargetTemperature', checked.ok ? ok(matterToCelsius(checked.value)) : checked);
    }
    case 'thermostat/thermostat.systemMode': {
      const mode = need('a system mode');
      return write('TargetHeatingCoolingState', mode.ok ? systemModeToHomeKit(mode.value) : mode);
    }
    default:
      return undefined;
  }
}

/** DoorLock lockDoor/unlockDoor → LockTargetState (1 secured, 0 unsecured). */
export const lockCommandToHomeKit = (lock: boolean): HomeKitWrite => ({ characteristic: 'LockTargetState', value: lock ? 1 : 0 });
