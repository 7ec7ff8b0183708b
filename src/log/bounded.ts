/**
 * Bounds what goes into a log line. Messages and fields often carry device input (a topic, a name, a
 * client id); a device must not be able to write a 60 KB line, or fill the disk a line at a time. Applied
 * to every log call (logger.ts), so no call site has to remember it.
 */
/** Longest string kept in a message or field; a stack trace gets more. */
export const MAX_LOG_STRING = 1024;
const MAX_STACK = 4096;
const MAX_ITEMS = 50;
const MAX_DEPTH = 3;

export function boundString(text: string, max = MAX_LOG_STRING): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(${text.length - max} more characters)`;
}

/** A copy of `value` with long strings cut, long arrays and objects shortened, buffers described. */
export function boundValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return boundString(value);
  if (value === null || typeof value !== 'object') return value;
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  if (value instanceof Error) return boundError(value, depth);
  if (depth >= MAX_DEPTH) return '[…]';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((item) => boundValue(item, depth + 1));
    return value.length > MAX_ITEMS ? [...items, `…(${value.length - MAX_ITEMS} more)`] : items;
  }
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return value; // Date, URL, …: their own JSON
  const entries = Object.entries(value);
  const bounded: Record<string, unknown> = {};
  for (const [key, item] of entries.slice(0, MAX_ITEMS)) bounded[boundString(key, 64)] = boundValue(item, depth + 1);
  if (entries.length > MAX_ITEMS) bounded['…'] = `${entries.length - MAX_ITEMS} more fields`;
  return bounded;
}

function boundError(error: Error, depth: number): Error {
  const own = Object.entries(error);
  const stack = error.stack ?? '';
  if (
    error.message.length <= MAX_LOG_STRING &&
    stack.length <= MAX_STACK &&
    own.every(([, v]) => typeof v !== 'string' || v.length <= MAX_LOG_STRING) &&
    own.length <= MAX_ITEMS
  )
    return error;
  const copy = new Error(boundString(error.message));
  copy.name = error.name;
  copy.stack = boundString(stack, MAX_STACK);
  Object.assign(copy, boundValue(Object.fromEntries(own), depth + 1));
  return copy;
}
