/**
 * HomeKit names must start and end with a letter or digit and hold only letters, digits, spaces,
 * apostrophes, '.', ',' and '-' (HAP-NodeJS checkName); others can keep the Home app from adding
 * the accessory. Device ids like `esp8266_12345678` become `esp8266 12345678`.
 */
const DISALLOWED = /[^\p{L}\p{N}\u2019 '.,-]+/gu;
const EDGE = /^[^\p{L}\p{N}]+|[^\p{L}\p{N}\u2019]+$/gu;
const VALID = /^[\p{L}\p{N}][\p{L}\p{N}\u2019 '.,-]*[\p{L}\p{N}\u2019]$/u;
const MAX_LENGTH = 64;

export function homeKitName(text: string, fallback = 'Device'): string {
  let name = text.replace(DISALLOWED, ' ').replace(/\s+/g, ' ').replace(EDGE, '');
  name = [...name].slice(0, MAX_LENGTH).join('').replace(EDGE, '');
  if (VALID.test(name)) return name;
  const padded = `${fallback} ${name}`.trim();
  return VALID.test(padded) ? padded : fallback;
}

/** HAP FirmwareRevision is `x[.y[.z]]`; take that from strings like `v1.2.3-beta`. */
export function homeKitFirmware(text: string): string | undefined {
  const match = /^v?(\d{1,9}(?:\.\d{1,9}){0,2})/i.exec(text.trim());
  return match?.[1];
}
