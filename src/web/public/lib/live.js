// The live event stream (GET /api/events, docs/api.md ): devices, OTA jobs and device log lines
// as they happen. Pages read `live` and hear changes through `onLive`; nothing here polls.
export const live = { devices: new Map(), jobs: [], rollouts: new Map() };

/** Log lines seen since the page opened, newest last, for a device page opened a moment later. */
const RECENT_LINES = 500;
const recent = [];

/**
 * The hub's own log lines from the stream, newest last, and the id of the last one: a page that fetched
 * the log (GET /api/hub-log) takes the ones after its last from here, so no line falls between its fetch
 * and the stream, and a stream opened again resumes after this id ([A-3] the hub log's cursor).
 */
const hubLines = [];
let hubLogLast = null;
/** Resolved when the current stream said hello: from then on, every hub log line comes on it. */
let ready = null;
let readyNow = () => {};

const listeners = new Set();
let source = null;

/**
 * Calls `fn(kind, data)` for 'device' (id), 'removed' (id), 'jobs', 'log' (line), 'log-dropped' ({lines}),
 * 'hub-log' (line) and 'hub-log-restarted' (the hub restarted: its log starts again).
 */
export function onLive(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

const tell = (kind, data) => {
  for (const fn of listeners) fn(kind, data);
};

export const recentLines = (device) => recent.filter((line) => line.device === device);

/** The hub log lines the stream brought after `id`, oldest first. */
export const hubLogSince = (id) => hubLines.filter((line) => line.id > id);

/**
 * Waits (at most `ms`) until the stream is open, so a page's fetch made after it misses nothing: the
 * stream brings every hub log line written after its hello.
 */
export function streamReady(ms = 5000) {
  return Promise.race([ready ?? Promise.resolve(), new Promise((resolve) => setTimeout(resolve, ms))]);
}

export function connect() {
  if (source && source.readyState !== EventSource.CLOSED) return;
  ready = new Promise((resolve) => (readyNow = resolve));
  // A stream opened again resumes the hub log after the last line it brought (the browser's own
  // reconnects send that id as Last-Event-ID).
  source = new EventSource(hubLogLast === null ? '/api/events' : `/api/events?hubLogAfter=${hubLogLast}`);
  const stream = source;
  stream.addEventListener('hello', (e) => {
    const { hubLogAfter } = JSON.parse(e.data);
    // A cursor behind ours: the hub restarted and numbers its lines from 1 again.
    if (typeof hubLogAfter === 'number' && hubLogLast !== null && hubLogAfter < hubLogLast) {
      hubLines.length = 0;
      hubLogLast = null;
      tell('hub-log-restarted');
    }
    if (stream === source) readyNow();
  });
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
  stream.addEventListener('hub-log', (e) => {
    const line = JSON.parse(e.data);
    if (hubLogLast !== null && line.id <= hubLogLast) return;
    hubLogLast = line.id;
    hubLines.push(line);
    if (hubLines.length > RECENT_LINES) hubLines.splice(0, hubLines.length - RECENT_LINES);
    tell('hub-log', line);
  });
  stream.addEventListener('log-dropped', (e) => tell('log-dropped', JSON.parse(e.data)));
}

export function disconnect() {
  source?.close();
  source = null;
}
