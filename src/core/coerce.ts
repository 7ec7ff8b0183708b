/**
 * Text payload <-> HAP value, by the characteristic's format and limits. We refuse what HAP-NodeJS
 * would silently clamp: a wrong value shown in the Home app is worse than the last good one.
 */
import { fail, ok, type Result } from './result.js';

export type HapFormat = 'bool' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int' | 'float' | 'string' | 'tlv8' | 'data';
export type HapValue = boolean | number | string;

export interface CharacteristicSpec {
  /** HAP-NodeJS's name, e.g. CurrentTemperature. */
  name: string;
  uuid: string;
  format: HapFormat;
  perms: readonly string[];
  unit?: string;
  minValue?: number;
  maxValue?: number;
  minStep?: number;
  validValues?: readonly number[];
  validValueRanges?: readonly [number, number];
  maxLen?: number;
  maxDataLen?: number;
}

/** The range each integer format can carry when the characteristic sets no tighter one. */
const FORMAT_RANGE: Partial<Record<HapFormat, [number, number]>> = {
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  int: [-2147483648, 2147483647],
};

const TRUE_WORDS = new Set(['1', 'true', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'off']);
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// Control characters other than tab garble the Home app's labels.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;
const DEFAULT_MAX_LEN = 64;
const DEFAULT_MAX_DATA_LEN = 2097152;

export function isIntegerFormat(format: HapFormat): boolean {
  return format in FORMAT_RANGE;
}

/** Parse a text payload into a value HomeKit accepts for this characteristic, or say why not. */
export function coerceValue(spec: CharacteristicSpec, text: string): Result<HapValue> {
  const raw = text.trim();
  switch (spec.format) {
    case 'bool': {
      const word = raw.toLowerCase();
      if (TRUE_WORDS.has(word)) return ok(true);
      if (FALSE_WORDS.has(word)) return ok(false);
      return fail(`'${short(raw)}' is not a boolean for ${spec.name}: use 1/0, true/false or on/off`);
    }
    case 'string': {
      const max = spec.maxLen ?? DEFAULT_MAX_LEN;
      if (CONTROL.test(text)) return fail(`${spec.name} must not contain control characters`);
      // HAP counts UTF-16 units (HAP-NodeJS cuts longer text, through a surrogate pair if need be).
      if (text.length > max)
        return fail(`${spec.name} is at most ${max} characters (an emoji or other character beyond U+FFFF counts as two), got ${text.length}`);
      return ok(text);
    }
    case 'tlv8':
    case 'data': {
      if (!BASE64.test(raw)) return fail(`${spec.name} (${spec.format}) takes base64 text, got '${short(raw)}'`);
      const bytes = (raw.length / 4) * 3 - (raw.endsWith('==') ? 2 : raw.endsWith('=') ? 1 : 0);
      const max = spec.maxDataLen ?? DEFAULT_MAX_DATA_LEN;
      if (spec.format === 'data' && bytes > max) return fail(`${spec.name} is at most ${max} bytes, got ${bytes}`);
      return ok(raw);
    }
    default:
      return coerceNumber(spec, raw);
  }
}

/** Coerce a value that is already typed (a HomeKit or API write) by the same rules as text. */
export function coerceTyped(spec: CharacteristicSpec, value: unknown): Result<HapValue> {
  if (typeof value === 'boolean') return coerceValue(spec, value ? '1' : '0');
  if (typeof value === 'number' || typeof value === 'string') return coerceValue(spec, String(value));
  return fail(`${spec.name} takes a ${spec.format} value, got ${value === null ? 'null' : typeof value}`);
}

function coerceNumber(spec: CharacteristicSpec, raw: string): Result<HapValue> {
  if (!NUMBER.test(raw)) {
    return fail(`'${short(raw)}' is not a number for ${spec.name} (${spec.format}${rangeText(spec)})`);
  }
  const parsed = Number(raw);
  if (!Number.isFinite(parsed)) return fail(`'${short(raw)}' is out of range for ${spec.name}${rangeText(spec)}`);
  const [min, max] = limits(spec);
  if (parsed < min || parsed > max) return fail(`${raw} is out of range for ${spec.name}${rangeText(spec)}`);

  const value = roundToStep(parsed, spec);
  if (spec.validValues && spec.validValues.length > 0 && !spec.validValues.includes(value)) {
    return fail(`${raw} is not a valid ${spec.name}: use one of ${spec.validValues.join(', ')}`);
  }
  if (spec.validValueRanges && (value < spec.validValueRanges[0] || value > spec.validValueRanges[1])) {
    return fail(`${raw} is out of range for ${spec.name}: use ${spec.validValueRanges[0]}..${spec.validValueRanges[1]}`);
  }
  return ok(value);
}

function limits(spec: CharacteristicSpec): [number, number] {
  const [formatMin, formatMax] = FORMAT_RANGE[spec.format] ?? [-Number.MAX_VALUE, Number.MAX_VALUE];
  return [Math.max(spec.minValue ?? formatMin, formatMin), Math.min(spec.maxValue ?? formatMax, formatMax)];
}

/** HAP steps count from minValue; integer formats step by 1 when no step is given. */
function roundToStep(value: number, spec: CharacteristicSpec): number {
  const step = spec.minStep ?? (isIntegerFormat(spec.format) ? 1 : undefined);
  if (step === undefined || step <= 0) return value;
  const base = spec.minValue ?? 0;
  const stepped = base + Math.round((value - base) / step) * step;
  const [min, max] = limits(spec);
  const decimals = decimalPlaces(step) + decimalPlaces(base);
  // Rounding can step past a limit that is not on the grid; stay within it.
  return Math.min(max, Math.max(min, Number(stepped.toFixed(Math.min(decimals, 15)))));
}

function decimalPlaces(n: number): number {
  const text = String(n);
  if (text.includes('e-')) return Number(text.split('e-')[1]);
  const dot = text.indexOf('.');
  return dot === -1 ? 0 : text.length - dot - 1;
}

function rangeText(spec: CharacteristicSpec): string {
  const [min, max] = limits(spec);
  const showMin = min !== -Number.MAX_VALUE;
  const showMax = max !== Number.MAX_VALUE;
  if (!showMin && !showMax) return '';
  const unit = spec.unit ? ` ${spec.unit}` : '';
  return `: allowed ${showMin ? min : '…'}..${showMax ? max : '…'}${unit}`;
}

/** The text form the hub publishes (`/set` topics): bools as 1/0, numbers as plain decimals. */
export function formatValue(value: HapValue): string {
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

function short(text: string): string {
  return text.length <= 40 ? text : `${text.slice(0, 40)}…`;
}
