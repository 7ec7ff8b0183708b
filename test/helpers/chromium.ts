/** Debian's Chromium for the dashboard's browser tests: found (a test is skipped without it, and fails under CI=true) and launched headless. */
import type { TestContext } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { requireTool } from './system-tools.js';

/** The Chromium binary, or undefined when the test was skipped for want of it. */
export function chromiumPath(t: TestContext): string | undefined {
  return requireTool(t, 'chromium', ['/usr/bin/chromium', 'chromium', 'chromium-browser'], 'apt-get install chromium');
}

export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
