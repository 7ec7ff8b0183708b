/**
 * What the hub reads from a device's JSON answers (docs/ota.md), as zod schemas: a device is
 * untrusted input, so an answer is checked before any field is used, and a bad one is named
 * ("esp32_x answered 'partitions' with …: count: expected number") instead of flowing on as
 * `undefined`. Loose objects: a newer device library may add fields. Pure: no I/O.
 */
import { z } from 'zod';
import { parseJson } from '../core/json.js';
import { fail, ok, type Result } from '../core/result.js';

const count = z.number().int().min(0);
/** A device path or label as the device says it; bounded, it goes into messages and the store. */
const label = z.string().max(200);
const paths = z.array(z.string().max(1024)).max(10_000);

/** [O-11] [O-12] [O-16] [O-6] `getversion`. `app` is null on a device whose meta names no firmware. */
export const getversionAnswer = z.looseObject({
  firmware: label.nullish(),
  app: label.nullish(),
  partition: label.nullish(),
  ota: z.number().int().min(1).max(99).optional(),
  rid: z.unknown().optional(),
  hashes: z.array(z.string().max(32)).max(16).optional(),
});

/** [O-22] `stats`: counters since the program started. */
export const statsAnswer = z.looseObject({
  uptime_s: count,
  reconnects: count,
  published: count,
  received: count,
  dropped: count.optional(),
  queued: count.optional(),
  mem_free: count.nullable().optional(), // null: the platform cannot tell [O-22]
});

/** [O-23] `hashes`: device path → hex hash of its content. */
export const hashesAnswer = z.record(z.string().max(1024), z.string().max(200));

/** [O-6] `partitions`: how many firmware partitions the device has (fewer than 2: no firmware update). */
export const partitionsAnswer = z.looseObject({ count: count.max(64) });

/** [O-13] [O-15] `commit`: the files it made live, and an error when the commit failed (old files kept). */
export const commitAnswer = z.looseObject({ committed: paths, error: z.string().optional() });

/** `discard`: the staged files it removed. */
export const discardAnswer = z.looseObject({ discarded: paths });

/** [O-4] The answer to `open` on stat/<id>/OTA: the address the device connects from. */
export const openAnswer = z.looseObject({ address: z.string().min(1).max(255) });

export const ANSWERS = {
  getversion: getversionAnswer,
  stats: statsAnswer,
  hashes: hashesAnswer,
  partitions: partitionsAnswer,
  commit: commitAnswer,
  discard: discardAnswer,
  open: openAnswer,
} as const;
export type AnswerCommand = keyof typeof ANSWERS;
export type Answer<C extends AnswerCommand> = z.output<(typeof ANSWERS)[C]>;

/**
 * A device's answer to `command`, checked; the error names the device, the command, the answer (cut
 * short) and the field, e.g. `esp32_x answered 'partitions' with '{"count":"2"}': count: expected number`.
 */
export function parseAnswer<C extends AnswerCommand>(device: string, command: C, text: string): Result<Answer<C>> {
  const parsed = parseJson(text, ANSWERS[command]);
  if (parsed.ok) return ok(parsed.value as Answer<C>); // `as`: TS cannot narrow ANSWERS[C] through the generic
  return fail(`${device} answered '${command}' with '${text.slice(0, 200)}': ${parsed.error}`);
}
