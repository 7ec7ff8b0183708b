/**
 * Reads a hub's console output for signs of an internal failure that the hub survived but should not
 * have had: error-level log entries (a listener or a promise that failed), and HAP-NodeJS's own
 * warnings about values or names it had to clamp, cut or refuse (mqttkit validates before HAP-NodeJS
 * sees a value, so such a warning means a value slipped past mqttkit's rules).
 */

/** HAP-NodeJS warnings about slow read/write handlers depend on machine load, not on the hub's rules. */
const TIMING = /slow to respond|didn't respond|timed out|took .* to respond/i;
/** mDNS trouble on a shared machine is not the hub's fault and does not affect tests over loopback. */
const ENVIRONMENT = /mDNS|advertis|avahi|ciao/i;

export interface LogProblem {
  line: string;
  why: string;
}

/** Problems in `text` (a slice of hub output), one per line, bounded for printing. */
export function hubLogProblems(text: string): LogProblem[] {
  const problems: LogProblem[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('{')) {
      let entry: { level?: number; msg?: string } | undefined;
      try {
        entry = JSON.parse(line) as { level?: number; msg?: string };
      } catch {
        continue; // a JSON-looking line cut by the pipe: not ours to judge
      }
      if ((entry.level ?? 0) >= 50) problems.push({ line: cut(line), why: 'error-level log entry' });
      continue;
    }
    if (TIMING.test(line) || ENVIRONMENT.test(line)) continue;
    if (/HAP-NodeJS WARNING/.test(line) || /characteristic|illegal value|exceeded|valid values/i.test(line)) {
      problems.push({ line: cut(line), why: "HAP-NodeJS warning (a value or name slipped past mqttkit's checks)" });
    } else if (/Unhandled|uncaught|UnhandledPromiseRejection|^\s*at .*\(.*:\d+:\d+\)$|Error:/.test(line)) {
      problems.push({ line: cut(line), why: 'error text on the console' });
    }
  }
  return problems;
}

function cut(line: string, max = 400): string {
  return line.length <= max ? line : `${line.slice(0, max)}…(${line.length} chars)`;
}
