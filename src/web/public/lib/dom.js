// Building elements: h('tag', {attributes, onevent}, ...children). Text is always text, never HTML.
export const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false && v != null) el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
};

/** A device state (online, offline, sleeping) as a coloured pill. */
export const badge = (s) => h('span', { class: `badge ${s}`, 'data-state': s }, s);

/** Inputs whose half-typed text a redraw must not throw away. */
const TYPED = new Set(['text', 'search', 'number', 'password', 'email', 'url', 'textarea']);

/**
 * Runs `redraw` (which rebuilds part of `container`) and gives the keyboard user back what they had: the
 * focused control keeps the focus (the same element if the redraw moved it, else the new one with its
 * id), and a text field keeps its half-typed text and caret. A live update must not steal either.
 */
export function keepFocus(container, redraw) {
  const el = document.activeElement;
  if (!el || el === document.body || !container.contains(el)) return redraw();
  const typed = TYPED.has(el.type) || el.tagName === 'TEXTAREA';
  const kept = { id: el.id, value: typed ? el.value : undefined, start: typed ? el.selectionStart : null, end: typed ? el.selectionEnd : null };
  const result = redraw();
  const target = el.isConnected && container.contains(el) ? el : kept.id ? document.getElementById(kept.id) : null;
  if (!target || !container.contains(target)) return result;
  if (target !== el && kept.value !== undefined && 'value' in target) target.value = kept.value;
  if (document.activeElement !== target) target.focus({ preventScroll: true });
  if (kept.start !== null && target.setSelectionRange) {
    try {
      target.setSelectionRange(kept.start, kept.end);
    } catch {
      // number fields have no caret to set
    }
  }
  return result;
}
