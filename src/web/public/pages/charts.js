// History charts on the device page (uPlot, served from /vendor/uplot).
import { api } from '../lib/api.js';
import { h } from '../lib/dom.js';

export async function drawCharts(device, container) {
  const numeric = device.services.flatMap((s) =>
    s.characteristics.filter((c) => typeof c.value === 'number' || typeof c.value === 'boolean').map((c) => ({ s, c })),
  );
  for (const { s, c } of numeric) {
    const box = h('div', { class: 'card', 'data-chart': `${s.service}/${c.name}` }, h('strong', {}, `${s.service}${s.index ? ' ' + s.index : ''} · ${c.name}`));
    container.append(box);
    let points;
    try {
      const q = new URLSearchParams({ device: device.id, service: s.service, index: s.index, characteristic: c.name, points: 300 });
      ({ points } = await api(`/api/history?${q}`));
    } catch (error) {
      box.append(h('p', { class: 'notice error', role: 'alert' }, `No history: ${error.message}`));
      continue;
    }
    if (points.length < 2 || !window.uPlot) {
      box.append(h('p', { class: 'muted' }, 'Not enough history yet.'));
      continue;
    }
    const data = [points.map((p) => p.at / 1000), points.map((p) => p.value)];
    new window.uPlot(
      { width: Math.min(container.clientWidth || 600, 900) - 40, height: 180, series: [{}, { label: c.name, stroke: '#0a66d8', width: 2 }], axes: [{}, {}] },
      data,
      box,
    );
  }
}
