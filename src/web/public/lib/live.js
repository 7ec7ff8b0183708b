// The live event stream (GET /api/events, docs/api.md ): devices, OTA jobs and device log lines
// as they happen. Pages read `live` and hear changes through `onLive`; nothing here polls.
export const live = { devices: new Map(), jobs: [], rollouts: new Map() };

/** Log lines seen since the page opened, newest last, for a device page opened a moment later. */
const RECENT_LINES = 500;
const recent = [];

const listeners = new Set();
let source = null;

/** Calls `fn(kind, data)` for 'device' (id), 'removed' (id), 'jobs', 'log' (line), 'log-dropped' ({lines}). */
export function onLive(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

const tell = (kind, data) => {
  for (const fn of listeners) fn(kind, data);
};

export const recentLines = (device) => recent.filter((line) => line.device === device);

export function connect() {
  if (source && source.readyState !== EventSource.CLOSED) return;
  source = new EventSource('/api/events');
  const stream = source;
  // The browser retries a dropped stream by itself, except after an error status: then we do.
  stream.addEventListener('error', () => {
    if (stream === source && stream.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  });
  stream.addEventListener('device', (e) => {
    const d = JSON.parse(e.data);
    live.devices.set(d.id, d);
    tell('device', d.id);
  });
  stream.addEventListener('removed', (e) => {
    const { id } = JSON.parse(e.data);
    live.devices.delete(id);
    tell('removed', id);
  });
  stream.addEventListener('jobs', (e) => {
    live.jobs = JSON.parse(e.data);
    tell('jobs');
  });
  stream.addEventListener('log', (e) => {
    const line = JSON.parse(e.data);
    recent.push(line);
    if (recent.length > RECENT_LINES) recent.splice(0, recent.length - RECENT_LINES);
    tell('log', line);
  });
  stream.addEventListener('rollout', (e) => {
    const rollout = JSON.parse(e.data);
    live.rollouts.set(rollout.id, rollout);
    tell('rollout', rollout);
  });
  stream.addEventListener('hub-log', (e) => tell('hub-log', JSON.parse(e.data)));
  stream.addEventListener('log-dropped', (e) => tell('log-dropped', JSON.parse(e.data)));
}

export function disconnect() {
  source?.close();
  source = null;
}
