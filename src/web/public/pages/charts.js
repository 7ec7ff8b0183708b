// History charts on the device page (uPlot, served from /vendor/uplot): each sized to its card (and
// resized with it), its y axis chosen by the characteristic's format (on/off as a 0/1 step chart,
// percentages 0-100, the rest automatic), a legend in words and units, and new readings added live.
import { axisKind, label, serviceLabel, unitText, valueText } from '/shared/characteristic-display.js';
import { api } from '../lib/api.js';
import { h } from '../lib/dom.js';

/** Points a chart keeps while the page is open (the store keeps the long history). */
const KEEP = 600;
const HEIGHT = 200;

const asNumber = (v) => (typeof v === 'boolean' ? Number(v) : typeof v === 'number' ? v : null);

/** uPlot options for one characteristic. */
function options(c, width) {
  const kind = axisKind(c);
  const unit = unitText(c);
  const y =
    kind === 'step'
      ? { range: [-0.1, 1.1] }
      : kind === 'percent'
        ? { range: [0, 100] }
        : { range: (_u, min, max) => (min === max ? [min - 1, max + 1] : [min - (max - min) * 0.1, max + (max - min) * 0.1]) };
  const stepped = window.uPlot.paths?.stepped;
  return {
    width,
    height: HEIGHT,
    legend: { show: true, live: true },
    scales: { x: { time: true }, y },
    series: [
      {},
      {
        label: `${label(c)}${unit ? ` (${unit})` : ''}`,
        stroke: '#0a66d8',
        width: 2,
        value: (_u, v) => (v == null ? '–' : valueText(c, kind === 'step' ? v === 1 : v)),
        ...(kind === 'step' && stepped ? { paths: stepped({ align: 1 }) } : {}),
      },
    ],
    axes: [
      {},
      kind === 'step'
        ? { splits: () => [0, 1], values: (_u, ticks) => ticks.map((t) => valueText(c, t === 1)), size: 90 }
        : { values: (_u, ticks) => ticks.map((t) => `${t}${unit ? ` ${unit}` : ''}`), size: 60 },
    ],
  };
}

/**
 * Draws a chart per numeric or on/off characteristic into `container`; returns `add(device)` for the
 * live stream: each chart takes the device's current value when it differs from its last point.
 */
export async function drawCharts(device, container) {
  const charts = [];
  const numeric = device.services.flatMap((s) =>
    s.characteristics.filter((c) => typeof c.value === 'number' || typeof c.value === 'boolean' || c.format === 'bool').map((c) => ({ s, c })),
  );
  for (const { s, c } of numeric) {
    const note = h('p', { class: 'muted' });
    const box = h(
      'div',
      { class: 'card chart-card', 'data-chart': `${s.service}/${c.name}` },
      h('strong', {}, `${serviceLabel(s.service)}${s.index ? ' ' + s.index : ''} · ${label(c)}`),
      note,
    );
    container.append(box);
    let points;
    try {
      const q = new URLSearchParams({ device: device.id, service: s.service, index: s.index, characteristic: c.name, points: 300 });
      ({ points } = await api(`/api/history?${q}`));
    } catch (error) {
      box.append(h('p', { class: 'notice error', role: 'alert' }, `No history: ${error.message}`));
      continue;
    }
    if (!window.uPlot) {
      note.textContent = 'Charts could not load (uPlot is missing).';
      continue;
    }
    if (points.length < 2) note.textContent = 'Not enough history yet: readings appear here as they come.';
    const data = [points.map((p) => p.at / 1000), points.map((p) => asNumber(p.value))];
    const width = () => Math.max(200, box.clientWidth - 32);
    const plot = new window.uPlot(options(c, width()), data, box);
    new ResizeObserver(() => plot.setSize({ width: width(), height: HEIGHT })).observe(box);
    box.uplot = plot; // the browser test reads the axes from it (they are drawn on a canvas)
    box.setAttribute('data-points', data[0].length);
    charts.push({ s, c, plot, data, note, box });
  }
  return (d) => {
    for (const chart of charts) {
      const service = d.services.find((x) => x.service === chart.s.service && x.index === chart.s.index);
      const value = asNumber(service?.characteristics.find((x) => x.name === chart.c.name)?.value);
      if (value === null) continue;
      const [xs, ys] = chart.data;
      if (ys.length && ys[ys.length - 1] === value && Date.now() / 1000 - xs[xs.length - 1] < 60) continue;
      xs.push(Date.now() / 1000);
      ys.push(value);
      if (xs.length > KEEP) xs.splice(0, xs.length - KEEP), ys.splice(0, ys.length - KEEP);
      if (xs.length >= 2) chart.note.textContent = '';
      chart.plot.setData(chart.data);
      chart.box.setAttribute('data-points', xs.length);
    }
  };
}
