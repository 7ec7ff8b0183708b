/** System tools the tests run for real. Missing locally: skip with a reason. Missing in CI: fail. */
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export function findTool(name: string, candidates: string[]): string | undefined {
  for (const candidate of candidates) {
    try {
      execFileSync(candidate.includes('/') ? 'test' : 'which', candidate.includes('/') ? ['-x', candidate] : [candidate], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  void name;
  return undefined;
}

/** Returns the tool's path, or skips the test (outside CI) / throws (with CI=true) when it is missing. */
export function requireTool(t: TestContext, name: string, candidates: string[], install: string): string | undefined {
  const found = findTool(name, candidates);
  if (found) return found;
  const message = `${name} is not installed (${install})`;
  if (process.env.CI === 'true') throw new Error(`${message}; CI must install it in .ci/run`);
  t.skip(message);
  return undefined;
}
