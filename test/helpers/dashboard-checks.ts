/// <reference lib="dom" />
/**
 * Checks the dashboard's browser tests share: axe-core's serious and critical findings, what a phone
 * width breaks (sideways scroll, an element past the screen's edge, a word split over two lines), and
 * the controls the keyboard cannot reach.
 */
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/** axe-core's serious and critical findings on the page as it is now (one line each). */
export async function axeProblems(page: Page, where: string): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const w = window as unknown as {
      axe: { run: (c: Document, o: object) => Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> };
    };
    const result = await w.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${where}: ${v.impact} ${v.id} at ${v.targets.join(', ')}`);
}

/**
 * At the page's current width: the document does not scroll sideways, no element is wider than the
 * screen, and no word of the main content is split over two lines (each word's range has one line box).
 */
export async function phoneProblems(page: Page, where: string): Promise<string[]> {
  return page.evaluate((where) => {
    const problems: string[] = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > doc.clientWidth + 1) problems.push(`${where}: the page scrolls sideways (${doc.scrollWidth} > ${doc.clientWidth})`);
    for (const el of document.querySelectorAll<HTMLElement>('body *')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || getComputedStyle(el).position === 'absolute') continue;
      if (r.right > doc.clientWidth + 1 && !el.closest('.table-scroll, .chart, pre'))
        problems.push(`${where}: <${el.tagName.toLowerCase()} class="${el.className}"> ends at ${Math.round(r.right)} px`);
    }
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent ?? '';
      const parent = node.parentElement;
      if (!parent || parent.closest('script, style, svg, option, [hidden]') || parent.offsetParent === null) continue;
      // A log box that does not wrap (it scrolls inside) cannot break a word.
      if (getComputedStyle(parent).whiteSpace === 'pre') continue;
      for (const m of text.matchAll(/\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index!);
        range.setEnd(node, m.index! + m[0].length);
        const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
        if (tops.size > 1) problems.push(`${where}: "${m[0].slice(0, 40)}" is broken over ${tops.size} lines`);
      }
    }
    return problems.slice(0, 20);
  }, where);
}

/**
 * Tabs through the page; returns the visible controls of `main` the keyboard never reached. A control is
 * known by what it is (its id, or its owner's id or data-* names, tag, link and text), not by its element:
 * a live page draws rows anew while the keyboard goes through them, and a new row's switch is the one
 * the user reached.
 */
export async function unreachable(page: Page): Promise<string[]> {
  const CONTROLS = 'main a[href], main button, main input, main select, main textarea, main [tabindex]';
  await page.evaluate(() => {
    const key = (el: Element) => {
      const owner = el.parentElement?.closest('[id], [data-device], [data-job], [data-token], [data-user], [data-account], [data-service]');
      const ownerKey = owner
        ? owner.id ||
          [...owner.attributes]
            .filter((a) => a.name.startsWith('data-'))
            .map((a) => `${a.name}=${a.value}`)
            .join(',')
        : '';
      return `${ownerKey} > ${el.tagName}#${el.id}[${el.getAttribute('href') ?? ''}] ${(el.textContent ?? '').trim().slice(0, 40)}`;
    };
    const w = window as unknown as { reached: Set<string>; controlKey: (el: Element) => string };
    (document.activeElement as HTMLElement | null)?.blur();
    w.controlKey = key;
    w.reached = new Set();
    document.addEventListener('focusin', (e) => w.reached.add(key(e.target as Element)));
  });
  const controls = await page.evaluate(
    (sel) =>
      [...document.querySelectorAll<HTMLElement>(sel)].filter((el) => el.offsetParent !== null && !(el as HTMLButtonElement).disabled && el.tabIndex >= 0)
        .length,
    CONTROLS,
  );
  for (let i = 0; i < controls + 15; i++) await page.keyboard.press('Tab');
  return page.evaluate((sel) => {
    const w = window as unknown as { reached: Set<string>; controlKey: (el: Element) => string };
    return [...document.querySelectorAll<HTMLElement>(sel)]
      .filter((el) => el.offsetParent !== null && !(el as HTMLButtonElement).disabled && el.tabIndex >= 0 && !w.reached.has(w.controlKey(el)))
      .map((el) => `<${el.tagName.toLowerCase()} id="${el.id}" class="${el.className}">${(el.textContent ?? '').slice(0, 30)}`);
  }, CONTROLS);
}
