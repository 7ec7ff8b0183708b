/** The results as a table for a person, or JSON for CI. */
import type { RuleResult } from './rules.js';

const MARK = { pass: 'PASS', fail: 'FAIL', skip: 'skip' } as const;

export function formatTable(device: string, results: RuleResult[]): string {
  const idWidth = Math.max(...results.map((r) => r.id.length));
  const sectionWidth = Math.max(...results.map((r) => r.section.length));
  const lines = results.map((r) => {
    const head = `${MARK[r.result]}  ${r.id.padEnd(idWidth)}  ${r.section.padEnd(sectionWidth)}  ${r.title}`;
    return r.reason && r.result !== 'pass' ? `${head}\n${' '.repeat(6 + idWidth + 2)}-> ${r.reason}` : head;
  });
  const count = (o: RuleResult['result']) => results.filter((r) => r.result === o).length;
  const failed = count('fail');
  lines.push('', `${device}: ${count('pass')} passed, ${failed} failed, ${count('skip')} not tested${failed ? '' : ' - conforms to the tested rules'}`);
  return lines.join('\n');
}

export function formatJson(device: string, results: RuleResult[]): string {
  return JSON.stringify(
    { device, passed: results.every((r) => r.result !== 'fail'), failed: results.filter((r) => r.result === 'fail').map((r) => r.id), results },
    null,
    2,
  );
}
