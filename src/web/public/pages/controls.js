// One characteristic's control: a switch, a list, a slider (with its number) or a text field for what
// HomeKit may write, the value in words and units for what it only reads. Labels and units come from
// the one table the hub serves (src/core/characteristic-display.ts).
import { label, serviceLabel, unitText, valueText } from '/shared/characteristic-display.js';
import { h } from '../lib/dom.js';

/** The control's id (tests and labels find it by this); `scope` keeps ids unique when many devices share a page. */
export const controlId = (service, c, scope = '') => `ctl-${scope ? scope + '-' : ''}${service.service}-${service.index}-${c.name}`;

/** `set(value)` is called with the value the user chose. */
export function control(service, c, set, scope = '') {
  const id = controlId(service, c, scope);
  const aria = `${scope ? scope + ' ' : ''}${serviceLabel(service.service)}${service.index ? ' ' + service.index : ''} ${label(c)}`;
  if (!c.writable) return h('strong', { class: 'reading', 'data-value': c.name }, valueText(c, c.value));
  if (c.format === 'bool')
    return h(
      'label',
      { class: 'switch' },
      h('input', { type: 'checkbox', id, role: 'switch', 'aria-label': aria, checked: c.value === true, onchange: (e) => set(e.target.checked) }),
      h('span', { class: 'switch-text', 'data-value': c.name }, valueText(c, c.value === true)),
    );
  if (c.validValues?.length)
    return h(
      'select',
      { id, 'aria-label': aria, onchange: (e) => set(Number(e.target.value)) },
      c.validValues.map((v) => h('option', { value: v, selected: v === c.value }, v)),
    );
  if (c.minValue !== null && c.maxValue !== null && c.format !== 'string') {
    // The number beside the slider follows the thumb while dragging; the device gets the value on release.
    const shown = h('output', { for: id, class: 'slider-value', 'data-value': c.name }, valueText(c, c.value));
    const input = h('input', {
      type: 'range',
      id,
      'aria-label': aria,
      min: c.minValue,
      max: c.maxValue,
      step: c.minStep ?? 1,
      value: c.value ?? c.minValue,
      oninput: (e) => (shown.textContent = valueText(c, Number(e.target.value))),
      onchange: (e) => set(Number(e.target.value)),
    });
    return h('span', { class: 'slider' }, input, shown);
  }
  const unit = unitText(c);
  return h(
    'span',
    {},
    h('input', { type: 'text', id, 'aria-label': aria, value: c.value ?? '', onchange: (e) => set(e.target.value) }),
    unit ? ` ${unit}` : '',
  );
}
