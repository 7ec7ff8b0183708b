/**
 * A size limit on MQTT packets, enforced on the socket before the bytes are buffered. aedes (1.2) and
 * its parser (mqtt-packet 9) have no such option: a CONNECT announcing 250 MB of remaining length is
 * read into memory whole, before any authentication. The guard reads only each packet's fixed header
 * (type and remaining-length varint) as the bytes stream past, and cuts the connection as soon as a
 * header announces more than the limit. [S-4]
 */
import type { Socket } from 'node:net';

/** [S-4] The largest PUBLISH payload a client may send (both brokers). */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

/** Packet types of MQTT 3.1.1 (the high nibble of the first byte). */
const CONNECT = 1;
const TYPE_NAMES = [
  'reserved',
  'CONNECT',
  'CONNACK',
  'PUBLISH',
  'PUBACK',
  'PUBREC',
  'PUBREL',
  'PUBCOMP',
  'SUBSCRIBE',
  'SUBACK',
  'UNSUBSCRIBE',
  'UNSUBACK',
  'PINGREQ',
  'PINGRESP',
  'DISCONNECT',
  'reserved',
];

export interface PacketLimits {
  /** Largest remaining length of the CONNECT packet (client id, credentials, will). */
  connectBytes: number;
  /** Largest remaining length of any later packet. */
  packetBytes: number;
}

export type PacketViolation =
  | { kind: 'not-connect-first'; type: string }
  | { kind: 'malformed-length' }
  | { kind: 'too-large'; type: string; bytes: number; limit: number };

/** Follows the packet boundaries of one connection's inbound byte stream. Pure: no I/O. */
export class PacketSizeGuard {
  #connected = false;
  #phase: 'header' | 'length' | 'body' = 'header';
  #type = 0;
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  #remaining = 0;

  constructor(private readonly limits: PacketLimits) {}

  /** Reads the next bytes; the first violation found, or undefined. */
  feed(chunk: Uint8Array): PacketViolation | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.#phase === 'body') {
        const skip = Math.min(this.#remaining, chunk.length - i);
        this.#remaining -= skip;
        i += skip;
        if (this.#remaining === 0) this.#phase = 'header';
        continue;
      }
      const byte = chunk[i++]!;
      if (this.#phase === 'header') {
        this.#type = byte >> 4;
        // [MQTT-3.1.0-1] The first packet from a client must be CONNECT.
        if (!this.#connected && this.#type !== CONNECT) return { kind: 'not-connect-first', type: TYPE_NAMES[this.#type]! };
        this.#phase = 'length';
        this.#length = 0;
        this.#multiplier = 1;
        this.#lengthBytes = 0;
        continue;
      }
      // Remaining length: 7 bits a byte, least significant first, at most 4 bytes [MQTT-2.2.3].
      this.#length += (byte & 0x7f) * this.#multiplier;
      this.#multiplier *= 128;
      this.#lengthBytes++;
      const limit = this.#type === CONNECT ? this.limits.connectBytes : this.limits.packetBytes;
      if (this.#length > limit) return { kind: 'too-large', type: TYPE_NAMES[this.#type]!, bytes: this.#length, limit };
      if (byte & 0x80) {
        if (this.#lengthBytes === 4) return { kind: 'malformed-length' };
        continue;
      }
      if (this.#type === CONNECT) this.#connected = true;
      this.#remaining = this.#length;
      this.#phase = this.#remaining > 0 ? 'body' : 'header';
    }
    return undefined;
  }
}

/**
 * Watches `socket`'s inbound bytes and destroys it on a violation. Call it right after aedes'
 * `handle(socket)`: aedes reads with a 'readable' listener and `read()`, and while a 'readable'
 * listener exists a 'data' listener does not switch the stream to flowing mode; it sees each chunk
 * inside `read()`, before aedes hands it to its parser (Node streams: "'readable' takes precedence").
 * So at most one chunk of an oversized packet is ever buffered.
 */
export function guardSocket(socket: Socket, limits: PacketLimits, onViolation: (violation: PacketViolation) => void): void {
  const guard = new PacketSizeGuard(limits);
  const watch = (chunk: Buffer) => {
    const violation = guard.feed(chunk);
    if (!violation) return;
    socket.off('data', watch);
    socket.destroy();
    onViolation(violation);
  };
  socket.on('data', watch);
}

/** The remaining length of the largest PUBLISH whose payload fits `maxPayload`: any topic, a packet id. */
export function publishLimit(maxPayload: number): number {
  return 2 + 0xffff + 2 + maxPayload;
}

export function describeViolation(violation: PacketViolation, maxPayload: number): string {
  switch (violation.kind) {
    case 'not-connect-first':
      return `${violation.type} before CONNECT (a client must log in first): closing the connection`;
    case 'malformed-length':
      return 'malformed packet length: closing the connection';
    case 'too-large':
      if (violation.type === 'PUBLISH')
        return `PUBLISH of ${violation.bytes} bytes announced: payload over ${maxPayload} bytes: disconnecting the client before reading it`;
      return `${violation.type} of ${violation.bytes} bytes announced, over the limit of ${violation.limit}: disconnecting the client before reading it`;
  }
}
