/** MQTT 3.1.1 bytes by hand, for clients that misbehave (or are too many for MQTT.js to be cheap). */
import { connect, type Socket } from 'node:net';

/** The remaining-length varint [MQTT-2.2.3]. */
export function varint(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

/** A length-prefixed UTF-8 string. */
export function utf8(text: string): Buffer {
  const body = Buffer.from(text);
  return Buffer.concat([Buffer.from([body.length >> 8, body.length & 0xff]), body]);
}

/** A CONNECT with username = client id and password, clean session, keepalive 60 s. */
export function connectPacket(id: string, password: string): Buffer {
  const body = Buffer.concat([utf8('MQTT'), Buffer.from([4, 0xc2, 0, 60]), utf8(id), utf8(id), utf8(password)]);
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body]);
}

/**
 * Connects from `localAddress`, sends a CONNECT and resolves with the CONNACK return code (-1 when the
 * hub closed the connection without one). The socket is closed afterwards.
 */
export function rawConnack(port: number, localAddress: string, id: string, password: string): Promise<number> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ port, host: '127.0.0.1', localAddress });
    let received = Buffer.alloc(0);
    const done = (code: number) => {
      socket.destroy();
      resolve(code);
    };
    socket.on('error', () => done(-1));
    socket.on('close', () => done(-1));
    socket.on('connect', () => socket.write(connectPacket(id, password)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4) done(received[0] === 0x20 ? received[3]! : -1);
    });
  });
}
