/**
 * What each kind of virtual device publishes and obeys. Values follow a bounded random walk, so a
 * chart of them looks like a room, not like noise.
 */
export type KindName = 'temperature' | 'humidity' | 'switch' | 'lightbulb' | 'sleepy';
export const KIND_NAMES: readonly KindName[] = ['temperature', 'humidity', 'switch', 'lightbulb', 'sleepy'];

export interface Reading {
  service: string;
  characteristic: string;
  value: string;
}

export interface Kind {
  model: string;
  /** Values to publish now (on connect and at each tick). */
  readings(state: Map<string, number>, random: () => number): Reading[];
  /** Writable characteristics, "Service/Characteristic", and how to take a written text value. */
  writable: Record<string, (text: string) => number | undefined>;
  sleeps?: boolean;
}

function walk(state: Map<string, number>, key: string, start: number, step: number, min: number, max: number, random: () => number, decimals: number): string {
  const current = state.get(key) ?? start + (random() - 0.5) * step * 10;
  const next = Math.min(max, Math.max(min, current + (random() - 0.5) * 2 * step));
  state.set(key, next);
  return next.toFixed(decimals);
}

const bool = (text: string) => (['1', 'true', 'on'].includes(text.toLowerCase()) ? 1 : ['0', 'false', 'off'].includes(text.toLowerCase()) ? 0 : undefined);
const percent = (text: string) => {
  const n = Number(text);
  return Number.isInteger(n) && n >= 0 && n <= 100 ? n : undefined;
};

export const KINDS: Record<KindName, Kind> = {
  temperature: {
    model: 'Simulated thermometer',
    readings: (s, r) => [{ service: 'TemperatureSensor', characteristic: 'CurrentTemperature', value: walk(s, 't', 21, 0.2, 10, 30, r, 1) }],
    writable: {},
  },
  humidity: {
    model: 'Simulated hygrometer',
    readings: (s, r) => [{ service: 'HumiditySensor', characteristic: 'CurrentRelativeHumidity', value: walk(s, 'h', 50, 1, 20, 90, r, 0) }],
    writable: {},
  },
  switch: {
    model: 'Simulated relay',
    readings: (s) => [{ service: 'Switch', characteristic: 'On', value: String(s.get('Switch/On') ?? 0) }],
    writable: { 'Switch/On': bool },
  },
  lightbulb: {
    model: 'Simulated dimmer',
    readings: (s) => [
      { service: 'Lightbulb', characteristic: 'On', value: String(s.get('Lightbulb/On') ?? 0) },
      { service: 'Lightbulb', characteristic: 'Brightness', value: String(s.get('Lightbulb/Brightness') ?? 100) },
    ],
    writable: { 'Lightbulb/On': bool, 'Lightbulb/Brightness': percent },
  },
  sleepy: {
    model: 'Simulated battery sensor',
    readings: (s, r) => [{ service: 'TemperatureSensor', characteristic: 'CurrentTemperature', value: walk(s, 't', 12, 0.3, -10, 35, r, 1) }],
    writable: {},
    sleeps: true,
  },
};
