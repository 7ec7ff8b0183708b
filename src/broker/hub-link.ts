/**
 * The hub's own connection to the broker, whichever broker it is: in-process aedes (no socket, no
 * serialisation) or an external broker over MQTT.js.
 */
import type { InboundMessage } from '../core/ingest.js';

export interface PublishOptions {
  qos: 0 | 1;
  retain: boolean;
}

export interface HubLink {
  /** Where devices connect, for people: `mqtt://192.168.1.5:1883`. */
  readonly address: string;
  subscribe(filter: string, handler: (message: InboundMessage) => void): Promise<void>;
  /** Ends one subscription made with `subscribe` (the same filter and handler); others are untouched. Optional: a link without it keeps the subscription. */
  unsubscribe?(filter: string, handler: (message: InboundMessage) => void): Promise<void>;
  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void>;
  close(): Promise<void>;
}
