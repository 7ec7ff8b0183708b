/**
 * The simulated ESP-NOW medium of the tests: a UDP relay on loopback that the PC stand-in of `espnow`
 * (device/micropython/pc/espnow.py) sends through. It plays the air, and the attacker on it: every frame
 * is recorded, any can be withheld, and frames can be sent from any address (replayed, forged, spoofed).
 */
import { createHmac } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

export const BROADCAST = 'ffffffffffff';
const REGISTER = '000000000000';

export interface AirFrame {
  src: string;
  dst: string;
  msg: Buffer;
  at: number;
}

export class Air {
  readonly frames: AirFrame[] = [];
  readonly #radios = new Map<string, RemoteInfo>();
  /** Return true to withhold a frame (it is still recorded). */
  hold: ((frame: AirFrame) => boolean) | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {
    socket.on('message', (data, from) => {
      if (data.length < 12) return;
      const src = data.subarray(0, 6).toString('hex');
      const dst = data.subarray(6, 12).toString('hex');
      this.#radios.set(src, from);
      if (dst === REGISTER) return;
      const frame = { src, dst, msg: Buffer.from(data.subarray(12)), at: Date.now() };
      this.frames.push(frame);
      if (!this.hold?.(frame)) this.send(src, dst, frame.msg);
    });
  }

  static async open(): Promise<Air> {
    const socket = createSocket('udp4');
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new Air(socket, socket.address().port);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Puts a frame on the air as if `src` sent it (any address: the attacker's radio can claim any). */
  send(src: string, dst: string, msg: Buffer): void {
    // The destination goes along: a radio that cannot hear broadcasts (ESP8266, pc/espnow.py) drops them.
    const out = Buffer.concat([Buffer.from(src, 'hex'), Buffer.from(dst, 'hex'), msg]);
    for (const [mac, to] of this.#radios) {
      if (mac === src || (dst !== BROADCAST && dst !== mac)) continue;
      this.socket.send(out, to.port, to.address);
    }
  }

  close(): void {
    this.socket.close();
  }
}

/** docs/protocol.md [E-1], [E-2]: a frame built independently of the device library. */
export function espnowFrame(key: Buffer, peer: string, kind: number, txid: number, ts: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(10);
  head.writeUInt8(1, 0);
  head.writeUInt8(kind, 1);
  head.writeUInt32BE(txid >>> 0, 2);
  head.writeUInt32BE(ts >>> 0, 6);
  const body = Buffer.concat([head, payload]);
  const tag = createHmac('sha256', key)
    .update(Buffer.concat([Buffer.from(peer, 'hex'), body]))
    .digest()
    .subarray(0, 16);
  return Buffer.concat([body, tag]);
}

export const FRAME = { PAIR: 0x01, WAKE: 0x02, DATA: 0x03, PAIR_OK: 0x81, TIME: 0x82, REPLY: 0x83 } as const;
export const frameKind = (msg: Buffer) => msg[1];
export const frameTxid = (msg: Buffer) => msg.readUInt32BE(2);
