/**
 * [P-27] Leftover discovery configs: at start the hub reads what the broker retains under its discovery
 * prefixes (the one in use, and any it used before) and clears the configs of ours that nothing wants
 * now: a device removed while the hub was stopped, a prefix changed, discovery turned off. Ours means
 * our unique_id scheme (`mqttkit:<device id>:<object id>`, naming the topic's own node and object), so
 * Zigbee2MQTT's, Tasmota's or ESPHome's configs under the same prefix are never touched.
 *
 * The window is bounded: it ends when a marker the hub publishes after subscribing comes back (the
 * broker sends a subscription's retained messages before anything published later), or after
 * `windowMs`; at most `maxConfigs` retained configs are looked at, and a config's payload is parsed
 * only when it is no bigger than ours can be.
 */
import { randomBytes } from 'node:crypto';
import type { HubLink } from '../broker/hub-link.js';
import type { InboundMessage } from '../core/ingest.js';
import { haId } from './discovery.js';

export interface SweepLimits {
  /** Retained configs looked at, at most; past it the sweep is incomplete (the next start tries again). */
  maxConfigs: number;
  /** A config bigger than this is not ours (ours are a few hundred bytes): not parsed. */
  maxConfigBytes: number;
  /** Longest wait for the broker's retained messages. */
  windowMs: number;
}

export const SWEEP_LIMITS: SweepLimits = { maxConfigs: 10_000, maxConfigBytes: 8 * 1024, windowMs: 10_000 };

/** Longest topic of ours: a 64-character prefix, a component, a node and an object id of a 64-character device id. */
const MAX_TOPIC_LENGTH = 512;

/** The node (haId of the device id) of a retained config of ours at `topic` under one of `prefixes`, or undefined when it is not ours. */
export function ourConfigNode(prefixes: readonly string[], topic: string, payload: Buffer, maxBytes = SWEEP_LIMITS.maxConfigBytes): string | undefined {
  if (topic.length > MAX_TOPIC_LENGTH || payload.length === 0 || payload.length > maxBytes) return undefined;
  const parts = topic.split('/');
  if (parts.length !== 5 || parts[4] !== 'config' || !prefixes.includes(parts[0]!)) return undefined;
  let config: unknown;
  try {
    config = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const unique = (config as { unique_id?: unknown } | null)?.unique_id;
  if (typeof unique !== 'string' || !unique.startsWith('mqttkit:')) return undefined;
  const cut = unique.lastIndexOf(':');
  const deviceId = unique.slice('mqttkit:'.length, cut);
  const object = unique.slice(cut + 1);
  // discovery.ts: topic `<prefix>/<component>/<haId(id)>/<object>/config`, unique_id `mqttkit:<id>:<object>`.
  return deviceId.length > 0 && haId(deviceId) === parts[2] && object === parts[3] ? parts[2] : undefined;
}

export interface SweepOutcome {
  /** Retained configs of ours: topic → node. */
  ours: Map<string, string>;
  /** Retained configs looked at. */
  seen: number;
  /** Every retained config arrived and was looked at (the marker came back, the bound was not reached). */
  complete: boolean;
  /** Why not, for the log. */
  incomplete?: string;
}

/**
 * Subscribes to `<prefix>/+/+/+/config` for each prefix, waits for the marker, unsubscribes, and tells
 * which retained configs are ours. `stopped` ends the window early (the hub stopping). Never rejects.
 */
export async function readRetainedConfigs(
  link: HubLink,
  prefixes: readonly string[],
  stopped: Promise<void>,
  limits: SweepLimits = SWEEP_LIMITS,
): Promise<SweepOutcome> {
  const outcome: SweepOutcome = { ours: new Map(), seen: 0, complete: false };
  let full = false;
  const take = (message: InboundMessage) => {
    // Only the broker's retained copies: a live config is being published now, not left over.
    if (message.live || full) return;
    if (++outcome.seen > limits.maxConfigs) {
      full = true;
      outcome.seen = limits.maxConfigs;
      return;
    }
    const node = ourConfigNode(prefixes, message.topic, message.payload, limits.maxConfigBytes);
    if (node !== undefined) outcome.ours.set(message.topic, node);
  };
  const nonce = randomBytes(8).toString('hex');
  // Not `…/config`: Home Assistant (subscribed to `<prefix>/#`) reads no discovery from it.
  const markerTopic = `${prefixes[0]}/mqttkit_sweep/${nonce}`;
  let markerBack: () => void = () => {};
  const marker = new Promise<void>((resolve) => (markerBack = resolve));
  const onMarker = (message: InboundMessage) => {
    if (message.payload.toString() === nonce) markerBack();
  };
  const filters = prefixes.map((prefix) => `${prefix}/+/+/+/config`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), limits.windowMs).unref()));
  const subscribed: Array<[string, (message: InboundMessage) => void]> = [];
  const steps = (async () => {
    for (const filter of filters) {
      subscribed.push([filter, take]);
      await link.subscribe(filter, take);
    }
    subscribed.push([markerTopic, onMarker]);
    await link.subscribe(markerTopic, onMarker);
    await link.publish(markerTopic, nonce, { qos: 1, retain: false });
    await marker;
    return 'marker' as const;
  })();
  steps.catch(() => {}); // a refusal after the window ended is no one's to handle
  try {
    const ended = await Promise.race([steps, timeout, stopped.then(() => 'stopped' as const)]);
    if (ended === 'timeout') outcome.incomplete = `the broker's retained configs did not all arrive within ${limits.windowMs / 1000} s`;
    else if (ended === 'stopped') outcome.incomplete = 'the hub stopped';
    else if (full)
      outcome.incomplete = `more than ${limits.maxConfigs} retained configs under ${prefixes.join(', ')}: only the first ${limits.maxConfigs} were looked at`;
    else outcome.complete = true;
  } catch (error) {
    outcome.incomplete = `the broker refused the subscription or the marker (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    clearTimeout(timer);
    full = true; // nothing more is taken, whatever still arrives
    for (const [filter, handler] of subscribed) link.unsubscribe?.(filter, handler).catch(() => {});
  }
  return outcome;
}
