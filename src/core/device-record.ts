/**
 * Reads a device record back from the store. A record the hub cannot use (edited by hand, written by
 * another version) is named and held aside rather than trusted: one device's data must not stop the
 * hub or be silently replaced.
 */
import { z } from 'zod';
import type { DeviceRecord } from './device.js';
import { fail, ok, type Result } from './result.js';
import { isValidDeviceId, MAX_SERVICE_INDEX } from './topic.js';

const text = z.string();
const hapValue = z.union([z.boolean(), z.number(), z.string()]);
// Loose objects keep fields a newer version may have added, so saving the record again loses nothing.
const service = z.looseObject({
  service: z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/),
  index: z.number().int().min(0).max(MAX_SERVICE_INDEX),
  values: z.record(z.string(), hapValue),
});
const record = z.looseObject({
  id: z.string().refine(isValidDeviceId, 'not a valid device id'),
  meta: z.looseObject({ name: text.optional(), manufacturer: text.optional(), model: text.optional(), firmware: text.optional() }),
  state: z.enum(['online', 'offline', 'sleeping']),
  lastSeen: z.number(),
  wakeAt: z.number().optional(),
  keepalive: z.number().int().positive().optional(),
  createdAt: z.number(),
  services: z.array(service),
});

export function parseDeviceRecord(value: unknown): Result<DeviceRecord> {
  const parsed = record.safeParse(value);
  if (parsed.success) return ok(parsed.data as DeviceRecord);
  const issue = parsed.error.issues[0]!;
  const where = issue.path.length > 0 ? issue.path.join('.') : 'record';
  return fail(`${where}: ${issue.message}`.slice(0, 200));
}
