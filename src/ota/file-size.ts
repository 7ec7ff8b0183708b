/**
 * The OTA file-size cap (`--ota-max-file-size`, [A-6] in docs/api.md): one rule for files that
 * reach the hub through the API and files the CLI queues from disk, so neither can make the hub hold
 * more than the owner chose.
 */

export const KIB = 1024;
export const MIB = 1024 * KIB;
export const OTA_MAX_FILE_SIZE_DEFAULT = '16MiB';
/** The range the option accepts: below 4 KiB nothing useful fits; above 256 MiB no board has the flash. */
export const OTA_MAX_FILE_SIZE_RANGE = { min: 4 * KIB, max: 256 * MIB } as const;

const UNITS: Record<string, number> = { '': 1, b: 1, k: KIB, kb: KIB, kib: KIB, m: MIB, mb: MIB, mib: MIB, g: 1024 * MIB, gb: 1024 * MIB, gib: 1024 * MIB };

/** `512k`, `16M`, `16MiB`, `1.5m`, `65536` → bytes (units are binary); undefined if it is not a size. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d{1,10}(?:\.\d{1,3})?)\s*([a-z]{0,3})$/i.exec(text.trim());
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) return undefined;
  return Math.round(Number(match[1]) * unit);
}

/** Bytes for people: `512 B`, `512 KiB`, `16 MiB`, `20.1 MiB`. */
export function formatSize(bytes: number): string {
  if (bytes < KIB) return `${bytes} B`;
  const [value, unit] = bytes < MIB ? [bytes / KIB, 'KiB'] : bytes < 1024 * MIB ? [bytes / MIB, 'MiB'] : [bytes / (1024 * MIB), 'GiB'];
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
}

/** The message for a file over the cap, or undefined when it fits. */
export function fileSizeProblem(name: string, bytes: number, limit: number): string | undefined {
  if (bytes <= limit) return undefined;
  return `${name} is ${formatSize(bytes)}, over the OTA limit of ${formatSize(limit)} (--ota-max-file-size)`;
}

/** How many characters the base64 text of `bytes` bytes has (with padding). */
export function base64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}
