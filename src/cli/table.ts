/**
 * How the CLI's listings look to people: a header row, columns aligned, times as "3 min ago". Scripts
 * take `--json` (exact ISO times) instead; these are for reading.
 */

const UNITS: Array<[Intl.RelativeTimeFormatUnit, number]> = [
  ['year', 365 * 24 * 3600_000],
  ['month', 30 * 24 * 3600_000],
  ['week', 7 * 24 * 3600_000],
  ['day', 24 * 3600_000],
  ['hour', 3600_000],
  ['minute', 60_000],
  ['second', 1000],
];

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto', style: 'short' });

/** `at` (ms since the epoch, or an ISO time) relative to `now`: "3 min. ago", "now", "-" for none. */
export function ago(at: number | string | null | undefined, now = Date.now()): string {
  if (at === null || at === undefined) return '-';
  const time = typeof at === 'number' ? at : Date.parse(at);
  if (!Number.isFinite(time)) return '-';
  const delta = time - now;
  if (Math.abs(delta) < 10_000) return 'just now';
  const [unit, size] = UNITS.find(([, ms]) => Math.abs(delta) >= ms) ?? UNITS.at(-1)!;
  return relative.format(Math.trunc(delta / size), unit);
}

/** Rows under a header, each column as wide as its widest cell; the last column is not padded. */
export function formatTable(header: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = rows.map((row) => header.map((_, i) => clean(row[i])));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  return [header, ...cells]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A cell on one line: device-reported text may hold newlines or control characters that break columns. */
function clean(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === '') return '-';
  const text = String(value).replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

/** Prints a table, or `empty` when there are no rows. */
export function printTable(header: string[], rows: Array<Array<string | number | null | undefined>>, empty: string): void {
  console.log(rows.length === 0 ? empty : formatTable(header, rows));
}

/**
 * A device's text as the terminal shows it: escape sequences (ESC, CSI, other controls but newline and
 * tab) are shown as `\xNN`, so a device cannot clear the screen, retitle the window or hide lines.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
