/**
 * Issue 10, finding 4: aedes buffered a whole packet before any authentication, so a CONNECT announcing
 * 250 MB was read into memory (8 such connections took the hub to 2.1 GB). Packet sizes are now checked
 * on the socket before buffering, and a connection that does not send CONNECT in time is closed. [S-4]
 * Raw TCP sockets play the attacker; the hub is a real child process, its memory read from /proc.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { connectDevice, devicePassword } from '../helpers/mqtt-device.js';
import { rssBytes } from '../helpers/proc.js';
import { connectPacket, utf8, varint } from '../helpers/raw-mqtt.js';

const MB = 1024 * 1024;
const ANNOUNCED = 250 * MB;

interface RawClient {
  socket: Socket;
  /** Milliseconds from `since` until the hub closed the connection. */
  closed: Promise<number>;
  since: number;
}

function open(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {}); // writing into a connection the hub cut: that is the point
    socket.once('connect', () => {
      const client: RawClient = { socket, since: Date.now(), closed: new Promise((done) => socket.once('close', () => done(Date.now() - client.since))) };
      resolve(client);
    });
    socket.once('error', reject);
  });
}

/** Writes `total` bytes in 1 MiB chunks as fast as the hub reads them, until it closes the connection. */
async function pump(client: RawClient, total: number): Promise<number> {
  const chunk = Buffer.alloc(MB, 0x41);
  let sent = 0;
  while (sent < total && !client.socket.destroyed && client.socket.writable) {
    const drained = client.socket.write(chunk);
    sent += chunk.length;
    if (!drained) await Promise.race([new Promise((r) => client.socket.once('drain', r)), new Promise((r) => client.socket.once('close', r))]);
  }
  return sent;
}

/** Resolves with the time to close, or with Infinity when the connection is still open after `ms`. */
function closedWithin(client: RawClient, ms: number): Promise<number> {
  return Promise.race([client.closed, new Promise<number>((r) => setTimeout(() => r(Infinity), ms).unref())]);
}

describe('MQTT packet limits', { timeout: 180_000 }, () => {
  let hub: RunningHub | undefined;
  const raw: RawClient[] = [];
  after(async () => {
    for (const client of raw) client.socket.destroy();
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it("cuts off CONNECTs announcing 250 MB before reading them, and the hub's memory stays flat", async () => {
    hub = await startHub();
    const port = hub.info.mqtt.port!;
    const pid = hub.child.pid!;
    const before = rssBytes(pid);
    const attackers = await Promise.all(Array.from({ length: 6 }, () => open(port)));
    raw.push(...attackers);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50);
    try {
      // Each announces 250 MB and then sends as fast as the hub reads: up to 48 MB each.
      await Promise.all(
        attackers.map(async (client) => {
          client.socket.write(Buffer.concat([Buffer.from([0x10]), varint(ANNOUNCED)]));
          await pump(client, 48 * MB);
        }),
      );
      peak = Math.max(peak, rssBytes(pid));
      assert.ok(peak - before < 100 * MB, `the hub grew by ${Math.round((peak - before) / MB)} MB`);
      const times = await Promise.all(attackers.map((client) => closedWithin(client, 3000)));
      assert.ok(
        times.every((t) => t < 3000),
        `connections closed after ${times.join(', ')} ms`,
      );
    } finally {
      clearInterval(sampler);
    }

    // Trickling: the announcement alone is enough.
    const trickler = await open(port);
    raw.push(trickler);
    trickler.socket.write(Buffer.concat([Buffer.from([0x10]), varint(ANNOUNCED)]));
    const trickle = setInterval(() => trickler.socket.writable && trickler.socket.write(Buffer.from([0x41])), 100);
    const trickled = await closedWithin(trickler, 3000);
    clearInterval(trickle);
    assert.ok(trickled < 3000, 'a trickling oversized CONNECT is closed at once');
    await eventually(
      () => /CONNECT of 262144000 bytes announced, over the limit of 8192: disconnecting the client before reading it/.test(hub!.output()),
      5000,
      'the log line',
    );
    assert.equal(hub.output().match(/CONNECT of 262144000 bytes/g)!.length, 1, 'logged once, not once per connection');
  });

  it('closes a connection that sends no CONNECT within a few seconds', async () => {
    const silent = await open(hub!.info.mqtt.port!);
    raw.push(silent);
    const elapsed = await closedWithin(silent, 15_000);
    assert.ok(elapsed < 10_000, `a silent connection stayed open for ${elapsed} ms`);
  });

  it('cuts off an authenticated device announcing an oversized PUBLISH before reading it', async () => {
    const pid = hub!.child.pid!;
    const device = await open(hub!.info.mqtt.port!);
    raw.push(device);
    const connack = new Promise<Buffer>((resolve) => device.socket.once('data', resolve));
    device.socket.write(connectPacket('raw-1', devicePassword('raw-1')));
    assert.deepEqual([...(await connack)], [0x20, 2, 0, 0], 'CONNACK 0: the device is in');

    const before = rssBytes(pid);
    device.since = Date.now();
    device.socket.write(Buffer.concat([Buffer.from([0x30]), varint(ANNOUNCED), utf8('HomeKit/raw-1/Switch/On')]));
    await pump(device, 64 * MB);
    const elapsed = await closedWithin(device, 3000);
    assert.ok(elapsed < 3000, `the device was still connected after ${elapsed} ms`);
    assert.ok(rssBytes(pid) - before < 50 * MB, `the hub grew by ${Math.round((rssBytes(pid) - before) / MB)} MB`);
    await eventually(
      () => /"client":"raw-1".*PUBLISH of 262144000 bytes announced: payload over 65536 bytes: disconnecting the client before reading it/.test(hub!.output()),
      5000,
      'the log line',
    );
  });

  it('still serves real devices', async () => {
    const device = await connectDevice(hub!.info.mqtt.address, 'after-1');
    await device.publishAsync('HomeKit/after-1/Switch/On', '1', { qos: 1 });
    // A large message within the limit (60 KB payload, any topic) is still accepted.
    await device.publishAsync('HomeKit/after-1/Switch/On', Buffer.alloc(60_000, 0x31), { qos: 1 });
    assert.ok(device.connected);
    await device.endAsync();
    assert.equal(hub!.child.exitCode, null);
  });
});
