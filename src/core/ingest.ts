/**
 * MQTT message -> registry. The one entry point for device input: checks the payload, parses the
 * topic, and hands the value to the registry. Refusals come back as values, never as exceptions.
 */
import type { DeviceRegistry } from './registry.js';
import { fail, ok, type Result } from './result.js';
import { parseTopic, truncate } from './topic.js';

/** Far above any HAP value (strings are at most 64 characters); protects logs and memory. */
export const MAX_PAYLOAD_BYTES = 1024;

export interface InboundMessage {
  topic: string;
  payload: Buffer;
  /** False for a retained message the broker replays on subscribe: it is not a sign of life. */
  live: boolean;
}

export type IngestOutcome = Result<'applied' | 'ignored'> & { deviceId?: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function ingest(registry: DeviceRegistry, message: InboundMessage): IngestOutcome {
  const parsed = parseTopic(message.topic);
  if (!parsed.ok) return parsed;
  const topic = parsed.value;
  const deviceId = topic.deviceId;
  const refuse = (error: string): IngestOutcome => ({ ...fail(`topic ${truncate(message.topic)}: ${error}`), deviceId });

  // Our own output (`/set`, `$error`) comes back to us through the subscription.
  if (topic.kind === 'set' || topic.kind === 'hub-output') return ok('ignored');

  // [P-3] [P-17] text payloads of bounded size
  if (message.payload.length > MAX_PAYLOAD_BYTES) {
    return refuse(`payload of ${message.payload.length} bytes is too large (at most ${MAX_PAYLOAD_BYTES})`);
  }
  let text: string;
  try {
    text = utf8.decode(message.payload);
  } catch {
    return refuse('payload is not UTF-8 text: publish the value as text, e.g. 21.5 or 1');
  }
  const origin = { live: message.live };

  if (topic.kind === 'state') {
    const result = registry.reportState(deviceId, text, origin);
    return result.ok ? { ...ok('applied'), deviceId } : refuse(result.error);
  }
  // [P-3] An empty payload clears a retained message; it is never a value.
  if (text.length === 0) return ok('ignored');
  const result =
    topic.kind === 'meta'
      ? registry.reportMeta(deviceId, topic.field, text, origin)
      : topic.kind === 'keepalive'
        ? registry.reportKeepalive(deviceId, text, origin)
        : registry.reportValue(deviceId, topic, topic.characteristic, text, origin);
  return result.ok ? { ...ok('applied'), deviceId } : refuse(result.error);
}
