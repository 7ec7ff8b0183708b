// Messages and confirmations shown where the action happened, never in a browser dialog: a dialog
// blocks the page (and its live updates), and a screen reader hears these lines as they change.
import { h } from './dom.js';

/**
 * A message line to put next to a form or button. `error()` is announced at once (role="alert"),
 * `done()` politely (role="status"); `clear()` empties it. `tag`: 'span' inside a line of text.
 */
export function messageLine(attrs = {}, tag = 'p') {
  const el = h(tag, { class: 'notice', role: 'status', 'aria-live': 'polite', ...attrs });
  const set = (kind, text) => {
    el.className = `notice ${kind}`;
    el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    el.setAttribute('aria-live', kind === 'error' ? 'assertive' : 'polite');
    el.textContent = text;
  };
  return {
    el,
    error: (text) => set('error', text),
    done: (text) => set('ok', text),
    clear: () => set('', ''),
  };
}

/** Runs an action; its error lands in `line` (and the promise resolves to undefined). */
export async function attempt(line, action) {
  line.clear();
  try {
    return await action();
  } catch (error) {
    line.error(error.message);
    return undefined;
  }
}

/**
 * Asks a question inside `host` (an element next to the button that asked) with a button to go on
 * and one to keep things as they are; resolves true or false. The first button gets the focus.
 */
export function confirmInline(host, question, yesLabel, noLabel = 'Keep') {
  return new Promise((resolve) => {
    const answer = (yes) => {
      box.remove();
      resolve(yes);
    };
    const yes = h('button', { type: 'button', class: 'danger', 'data-confirm': 'yes', onclick: () => answer(true) }, yesLabel);
    const box = h(
      'span',
      { class: 'confirm', role: 'group', 'aria-label': question },
      h('span', {}, question, ' '),
      yes,
      ' ',
      h('button', { type: 'button', class: 'secondary', 'data-confirm': 'no', onclick: () => answer(false) }, noLabel),
    );
    host.replaceChildren(box);
    yes.focus();
  });
}
