/**
 * [M-5] Stable endpoint numbers: a device's Bridged Node endpoint and each of its service endpoints keep
 * their number across restarts (controllers key their rooms, names and automations on it). The table is
 * one store setting beside the HomeKit bridge assignments, written durably before an endpoint is shown;
 * numbers are never reused (a removed device's numbers are retired), and a damaged table is refused by
 * name, never replaced.
 */
import { fail, ok, type Result } from '../core/result.js';

/** 0 is the root node, 1 the Aggregator. */
export const FIRST_ENDPOINT = 2;
/** Matter endpoint numbers are 16-bit; 0xFFFF is reserved. */
export const LAST_ENDPOINT = 0xfffe;
export const ENDPOINTS_SETTING = 'matter.endpoints';

export interface EndpointTable {
  next: number;
  numbers: Record<string, number>;
}

/** The key of a device's bridged node, and of one of its services. */
export const deviceKey = (deviceId: string): string => deviceId;
export const serviceKey = (deviceId: string, service: string, index: number): string => `${deviceId}/${service}/${index}`;

export function parseTable(text: string | undefined): Result<EndpointTable> {
  if (text === undefined) return ok({ next: FIRST_ENDPOINT, numbers: {} });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return fail(`not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null) return fail('not an object');
  const { next, numbers } = parsed as Record<string, unknown>;
  if (typeof next !== 'number' || !Number.isInteger(next) || next < FIRST_ENDPOINT || next > LAST_ENDPOINT + 1)
    return fail(`next ${String(next)} is not an endpoint number`);
  if (typeof numbers !== 'object' || numbers === null || Array.isArray(numbers)) return fail('numbers is not an object');
  const seen = new Set<number>();
  for (const [key, n] of Object.entries(numbers)) {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < FIRST_ENDPOINT || n >= next)
      return fail(`${key}: ${String(n)} is not an endpoint number below ${next}`);
    if (seen.has(n)) return fail(`endpoint ${n} is given twice`);
    seen.add(n);
  }
  return ok({ next, numbers: { ...(numbers as Record<string, number>) } });
}

export class EndpointNumbers {
  /** Saves run one after another, each with the whole table as it is then: the last one written is the newest. */
  #saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly table: EndpointTable,
    private readonly save: (text: string) => Promise<void>,
  ) {}

  /** The number of `key`, assigned (and saved) on first use; undefined when all numbers are used up. */
  async numberFor(key: string): Promise<number | undefined> {
    const known = this.table.numbers[key];
    if (known !== undefined) return known;
    if (this.table.next > LAST_ENDPOINT) return undefined;
    const number = this.table.next;
    this.table.next += 1;
    this.table.numbers[key] = number;
    await this.#persist();
    return number;
  }

  /** Retires a device's numbers (never given again: a controller must not mistake a new device for it). */
  async release(deviceId: string): Promise<void> {
    const keys = Object.keys(this.table.numbers).filter((k) => k === deviceKey(deviceId) || k.startsWith(`${deviceId}/`));
    if (keys.length === 0) return;
    for (const key of keys) delete this.table.numbers[key];
    await this.#persist();
  }

  #persist(): Promise<void> {
    const next = this.#saving.catch(() => {}).then(() => this.save(JSON.stringify(this.table)));
    this.#saving = next;
    return next;
  }
}
