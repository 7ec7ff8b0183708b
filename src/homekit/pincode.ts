/** The HomeKit setup code: `XXX-XX-XXX`, minus the codes the HAP specification forbids. */
import { randomInt } from 'node:crypto';
import { fail, ok, type Result } from '../core/result.js';

const FORMAT = /^\d{3}-\d{2}-\d{3}$/;
const FORBIDDEN = new Set([...Array.from({ length: 10 }, (_, d) => String(d).repeat(8)), '12345678', '87654321']);

export function checkPincode(code: string): Result<string> {
  if (!FORMAT.test(code)) return fail(`'${code}' is not a setup code: use the form 123-45-654 (eight digits)`);
  if (FORBIDDEN.has(code.replace(/-/g, ''))) return fail(`${code} is too easy to guess and HomeKit refuses it: choose another`);
  return ok(code);
}

export function generatePincode(): string {
  for (;;) {
    const digits = Array.from({ length: 8 }, () => randomInt(10)).join('');
    const code = `${digits.slice(0, 3)}-${digits.slice(3, 5)}-${digits.slice(5)}`;
    if (checkPincode(code).ok) return code;
  }
}
