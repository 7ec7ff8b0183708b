/**
 * A simulated A/B firmware table and the bootloader that chooses between its two slots, as an ESP32
 * with an `ota_0`/`ota_1` partition table does it [O-6] [O-21]: an image goes to the spare slot and is
 * marked for the next boot; the board then boots it unconfirmed; `keepversion` confirms it; a reset
 * before that (or an image that does not start) goes back to the slot it came from.
 */
import { createHash } from 'node:crypto';

export type SlotLabel = 'ota_0' | 'ota_1';

export interface Image {
  /** What `getversion` says as `firmware` while this image runs. */
  version: string;
  /** False: the image "does not start", so the bootloader falls back at once. */
  boots: boolean;
}

/** What the simulator's firmware was built as; the image both slots hold before any update. */
export const FACTORY_FIRMWARE = '1.27.0-sim';

/**
 * An image as the simulator reads it: a JSON object `{"version": "2.0.0", "boots": true}` (the format of
 * the CPython stand-in's `firmware_a.bin`, docs/ota.md 5.3) or any other bytes, which boot and are named
 * by their hash. A size-bounded parse: a real image can be megabytes.
 */
export function readImage(bytes: Buffer): Image {
  const named = { version: `image-${createHash('sha1').update(bytes).digest('hex').slice(0, 8)}`, boots: true };
  if (bytes.length > 4096 || bytes[0] !== 0x7b) return named;
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { version?: unknown; boots?: unknown };
    return {
      version: typeof parsed.version === 'string' && parsed.version.length > 0 ? parsed.version.slice(0, 64) : named.version,
      boots: parsed.boots !== false,
    };
  } catch {
    return named;
  }
}

export class Partitions {
  readonly #slots: Record<SlotLabel, Image> = { ota_0: { version: FACTORY_FIRMWARE, boots: true }, ota_1: { version: FACTORY_FIRMWARE, boots: true } };
  #running: SlotLabel = 'ota_0';
  /** The slot marked for the next boot (`Partition.set_boot`), if an image was written. */
  #next: SlotLabel | undefined;
  /** The running image has not been confirmed by `keepversion` yet (`mark_app_valid_cancel_rollback`). */
  #unconfirmed = false;

  get running(): SlotLabel {
    return this.#running;
  }

  get version(): string {
    return this.#slots[this.#running].version;
  }

  get spare(): SlotLabel {
    return this.#running === 'ota_0' ? 'ota_1' : 'ota_0';
  }

  /** [O-6] A verified image into the spare slot, marked for the next boot; answers the label written. */
  write(bytes: Buffer): SlotLabel {
    const label = this.spare;
    this.#slots[label] = readImage(bytes);
    this.#next = label;
    return label;
  }

  /**
   * The bootloader at a reset: a marked slot is tried (unconfirmed); an unconfirmed image that resets
   * again, or one that does not start, gives way to the slot it came from. Answers what happened, for the
   * device's boot log line.
   */
  boot(): string {
    if (this.#next !== undefined) {
      const from = this.#running;
      this.#running = this.#next;
      this.#next = undefined;
      if (this.#slots[this.#running].boots) {
        this.#unconfirmed = true;
        return `booted the new firmware ${this.version} on ${this.#running}, not yet confirmed (keepversion)`;
      }
      const failed = this.#running;
      this.#running = from;
      this.#unconfirmed = false;
      return `the firmware on ${failed} did not start: rolled back to ${this.version} on ${from}`;
    }
    if (this.#unconfirmed) {
      const failed = this.#running;
      this.#running = this.spare;
      this.#unconfirmed = false;
      return `the firmware on ${failed} was never confirmed: rolled back to ${this.version} on ${this.#running}`;
    }
    return `firmware ${this.version} on ${this.#running}`;
  }

  /** [O-20] `keepversion`: the running image stays. */
  keep(): string {
    this.#unconfirmed = false;
    return `firmware on ${this.#running} kept`;
  }
}
