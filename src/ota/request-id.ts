/**
 * [O-12] Request ids: which line on stat/<id>/Log answers which command. Pure functions, no I/O.
 * A device that echoes ids (it says `"rid": 1` in `getversion`) gets `#<n> <command>` and answers
 * `#<n> <answer>`; any other Log line is a log line. For a device that does not echo, the answer is
 * the next Log line of the command's answer shape.
 */
import { otaCommand } from './commands.js';

/** The largest request id; after it the counter starts again at 1. */
export const MAX_RID = 999_999_999;

/** The next id after `previous` (0: none sent yet): 1..MAX_RID, increasing, then 1 again. */
export const nextRid = (previous: number): number => (previous >= MAX_RID || previous < 1 ? 1 : previous + 1);

/** The command as sent to a device that echoes: `#<n> <command>`. */
export const withRid = (rid: number, command: string): string => `#${rid} ${command}`;

/** The command's name: its first word (the argument is the rest of the text). */
export const commandName = (command: string): string => command.trim().split(' ')[0] ?? '';

/** The answer to request `rid` in a Log line (the line without its `#<n> ` prefix), or undefined if the line is not it. */
export function answerTo(rid: number, line: string): string | undefined {
  const prefix = `#${rid} `;
  return line.startsWith(prefix) ? line.slice(prefix.length) : undefined;
}

/**
 * Whether a Log line can be the answer to `command` from a device that does not echo ids: a JSON
 * object for the JSON commands, holding one of its documented fields where it has fixed ones (or the documented error answers `unknown command <name> …` and
 * `command <name> failed: …`, so a failure is reported rather than waited out); any line otherwise.
 */
export function fitsAnswer(command: string, line: string): boolean {
  const name = commandName(command);
  // The answer shapes and documented fields: the command table (commands.ts, docs/ota.md §3).
  const entry = otaCommand(name);
  if (entry?.answer !== 'json') return true;
  if (line.startsWith(`unknown command ${name}`) || line.startsWith(`command ${name} failed`)) return true;
  const text = line.trim();
  if (!text.startsWith('{')) return false;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
    const fields = entry.fields;
    return fields === undefined || fields.some((field) => Object.hasOwn(value, field));
  } catch {
    return false;
  }
}

/** Whether a `getversion` answer says the device echoes request ids (`"rid": 1`). */
export const echoesRid = (version: { rid?: unknown }): boolean => version.rid === 1;
