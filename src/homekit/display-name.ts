/**
 * One rule for every name HomeKit shows (accessory and service names, Name and ConfiguredName values,
 * manufacturer and model): HAP-NodeJS's checkName. A name starts and ends with a letter or digit and
 * holds only letters, digits, spaces, apostrophes, '.', ',' and '-'; others can keep the Home app from
 * adding the accessory, and hostile text (markup, bidi overrides, zero-width characters) could
 * disguise one accessory as another. Device ids like `esp8266_12345678` become `esp8266 12345678`.
 */
import { Characteristic } from 'hap-nodejs';

/**
 * Invisible characters are dropped without a trace, so they cannot split or disguise a word: format
 * characters (bidi controls U+202A-U+202E, U+2066-U+2069, U+200E/F, U+061C, zero-width U+200B-U+200D,
 * U+FEFF, soft hyphen ...). Line breaks and tabs are spaces; other control characters, and combining
 * marks left after NFC (checkName refuses them), are dropped too.
 */
const FORMAT = /\p{Cf}+/gu;
const WHITESPACE = /\s+/gu;
const CONTROL_OR_MARK = /[\p{Cc}\p{M}]+/gu;
/** Everything else outside the allowed set (markup <>&", symbols, emoji, other spaces) becomes a space. */
const DISALLOWED = /[^\p{L}\p{N}\u2019 '.,-]+/gu;
const EDGE = /^[^\p{L}\p{N}]+|[^\p{L}\p{N}\u2019]+$/gu;
/** HAP-NodeJS's checkName (lib/util/checkName.js). */
const VALID = /^[\p{L}\p{N}][\p{L}\p{N}\u2019 '.,-]*[\p{L}\p{N}\u2019]$/u;
const MAX_LENGTH = 64;
const LAST_RESORT = 'Device';

export function homeKitName(text: string, fallback = LAST_RESORT): string {
  const name = clean(text);
  if (VALID.test(name)) return name;
  const cleanFallback = clean(fallback);
  const safeFallback = VALID.test(cleanFallback) ? cleanFallback : LAST_RESORT;
  // A lone letter ('A') is no valid name by itself: keep it after the fallback ('Device A').
  const padded = clean(`${safeFallback} ${name}`);
  return VALID.test(padded) ? padded : safeFallback;
}

function clean(text: string): string {
  const name = String(text)
    .normalize('NFC')
    .replace(FORMAT, '')
    .replace(WHITESPACE, ' ')
    .replace(CONTROL_OR_MARK, '')
    .replace(DISALLOWED, ' ')
    .replace(/ +/g, ' ')
    .replace(EDGE, '');
  return cut(name, MAX_LENGTH).replace(EDGE, '');
}

/** At most `max` UTF-16 units (what HAP counts), never splitting a character beyond U+FFFF. */
function cut(text: string, max: number): string {
  let out = '';
  for (const char of text) {
    if (out.length + char.length > max) break;
    out += char;
  }
  return out;
}

/**
 * HAP-NodeJS ignores a SerialNumber of one character ("HomeKit will reject this accessory"), leaving
 * a default one that several devices would share. Device ids are 1-64 of [A-Za-z0-9_-]; a ':' cannot
 * occur in one, so the longer form never equals another device's id.
 */
export function homeKitSerial(deviceId: string): string {
  return deviceId.length > 1 ? deviceId : `mqttkit:${deviceId}`;
}

/** Characteristics HomeKit displays as a name: their values pass through homeKitName wherever they come from. */
const NAME_CHARACTERISTICS: ReadonlySet<string> = new Set([Characteristic.Name.UUID, Characteristic.ConfiguredName.UUID]);

export function isNameCharacteristic(uuid: string): boolean {
  return NAME_CHARACTERISTICS.has(uuid);
}

/** HAP FirmwareRevision is `x[.y[.z]]`; take that from strings like `v1.2.3-beta`. */
export function homeKitFirmware(text: string): string | undefined {
  const match = /^v?(\d{1,9}(?:\.\d{1,9}){0,2})/i.exec(text.trim());
  return match?.[1];
}
