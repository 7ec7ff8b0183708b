// One characteristic's control on the device page: a switch, a list, a slider or a text field for
// what HomeKit may write, the plain value for what it only reads.
import { h } from '../lib/dom.js';
import { show } from '../lib/format.js';

/** The control's id (tests and labels find it by this). */
export const controlId = (service, c) => `ctl-${service.service}-${service.index}-${c.name}`;

/** `set(value)` is called with the value the user chose. */
export function control(service, c, set) {
  const id = controlId(service, c);
  const label = `${service.service}${service.index ? ' ' + service.index : ''} ${c.name}`;
  if (!c.writable) return h('strong', { 'data-value': c.name }, `${show(c.value)}${c.unit ? ' ' + c.unit : ''}`);
  if (c.format === 'bool')
    return h('input', { type: 'checkbox', id, role: 'switch', 'aria-label': label, checked: c.value === true, onchange: (e) => set(e.target.checked) });
  if (c.validValues?.length)
    return h(
      'select',
      { id, 'aria-label': label, onchange: (e) => set(Number(e.target.value)) },
      c.validValues.map((v) => h('option', { value: v, selected: v === c.value }, v)),
    );
  if (c.minValue !== null && c.maxValue !== null && c.format !== 'string')
    return h('input', {
      type: 'range',
      id,
      'aria-label': label,
      min: c.minValue,
      max: c.maxValue,
      step: c.minStep ?? 1,
      value: c.value ?? c.minValue,
      onchange: (e) => set(Number(e.target.value)),
    });
  return h('input', { type: 'text', id, 'aria-label': label, value: c.value ?? '', onchange: (e) => set(e.target.value) });
}
