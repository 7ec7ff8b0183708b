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
