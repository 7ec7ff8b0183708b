/**
 * JSON read across a boundary (a file, a database row, an MQTT payload) is checked against a zod
 * schema, never cast: a value the hub cannot use becomes an error naming the field, not a crash later
 * or a silent `undefined`. Pure: callers add where the JSON came from and what to do about it.
 */
import type { z } from 'zod';
import { fail, ok, type Result } from './result.js';

/** The first problem of a failed parse, as `field: what is wrong` (bounded: it goes into logs and answers). */
export function describeIssues(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'not valid';
  const where = issue.path.length > 0 ? issue.path.map(String).join('.') : 'the value';
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : '';
  return `${where}: ${issue.message}${more}`.slice(0, 300);
}

/** A value (already parsed JSON) checked against `schema`. */
export function checkJson<S extends z.ZodType>(value: unknown, schema: S): Result<z.output<S>> {
  const parsed = schema.safeParse(value);
  return parsed.success ? ok(parsed.data) : fail(describeIssues(parsed.error));
}

/** JSON text checked against `schema`; "not valid JSON (…)" when it does not parse at all. */
export function parseJson<S extends z.ZodType>(text: string, schema: S): Result<z.output<S>> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return fail(`not valid JSON (${(error as Error).message.slice(0, 100)})`);
  }
  return checkJson(value, schema);
}
