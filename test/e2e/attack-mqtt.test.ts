/**
 * Attacks on the MQTT side found after issue 10's fixes: limits a client could step around by
 * reconnecting, and caps a few busy addresses could hold for everyone.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';
import { rawConnack } from '../helpers/raw-mqtt.js';

/** The embedded broker's defaults (docs/protocol.md): 100 messages a second, bursts of 500. */
const PER_SECOND = 100;
const BURST = 500;

describe('attack: MQTT limits', { timeout: 180_000 }, () => {
  const hubs: RunningHub[] = [];
  after(async () => {
    for (const hub of hubs) {
      await hub.stop('SIGKILL');
      removeDataDir(hub.dataDir);
    }
  });

  it('a flooding device that reconnects after each cut-off gets no new burst: its rate limit holds across connections', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const token = (JSON.parse(cli(['token', 'create', 'attack', '--json', '--data-dir', hub.dataDir]).stdout) as { token: string }).token;
    const received = async () => {
      const response = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/metrics`, { headers: { authorization: `Bearer ${token}` } });
      return ((await response.json()) as { messages: { received: number } }).messages.received;
    };
    const url = hub.info.mqtt.address;
    const before = await received();

    // Each connection sends just under a burst, then hangs up and comes straight back.
    const rounds = 20;
    const perRound = 450;
    const started = Date.now();
    for (let round = 0; round < rounds; round++) {
      const flooder = await connectDevice(url, 'flooder');
      flooder.on('error', () => {}); // a cut-off client errors on its next publish; that is the point
      for (let i = 0; i < perRound; i++) flooder.publish('HomeKit/flooder/TemperatureSensor/CurrentTemperature', String(i % 50), { qos: 0 });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => (flooder.end(true), resolve()), 2000);
        flooder.end(false, {}, () => (clearTimeout(timer), resolve()));
      });
    }
    const seconds = (Date.now() - started) / 1000;
    // Let what was admitted arrive, then count it.
    let last = -1;
    const total = await eventually(
      async () => {
        const now = await received();
        const settled = now === last;
        last = now;
        return settled && now;
      },
      10_000,
      'the message counter to settle',
    );
    const admitted = total - before;
    const allowed = BURST + PER_SECOND * seconds * 1.2 + 100;
    assert.ok(admitted >= perRound, `the first connection's ${perRound} messages (within one burst) are admitted (${admitted})`);
    assert.ok(
      admitted <= allowed,
      `${admitted} of ${rounds * perRound} messages admitted in ${seconds.toFixed(1)} s over ${rounds} connections; the limit allows about ${Math.round(allowed)}`,
    );
    assert.equal(hub.child.exitCode, null, 'the hub runs');
  });

  it('a new device gets registered while three addresses keep every registration slot busy', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const port = hub.info.mqtt.port!;
    // Three addresses keep 16 registrations each in flight, without end: fresh ids, good passwords.
    let stop = false;
    let squatted = 0;
    const squatter = async (address: string, lane: number) => {
      for (let n = 0; !stop; n++) {
        if ((await rawConnack(port, address, `squat-${address.replaceAll('.', '_')}-${lane}-${n}`, 'squatter-password')) === 0) squatted++;
      }
    };
    const squatters = ['127.0.0.2', '127.0.0.3', '127.0.0.5'].flatMap((address) => Array.from({ length: 16 }, (_, lane) => squatter(address, lane)));
    try {
      await eventually(() => squatted >= 48, 30_000, 'the squatters to hold the registration slots');
      // The owner's new lamp, from its own address, retries as a device does (here every half second).
      const codes: number[] = [];
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const code = await rawConnack(port, '127.0.0.4', 'new-lamp', 'lamp-password-123');
        codes.push(code);
        if (code === 0) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(
        codes.at(-1),
        0,
        `the new device was refused ${codes.length} times in 20 s (CONNACK ${[...new Set(codes)].join(', ')}) while three addresses registered ${squatted} ids`,
      );
    } finally {
      stop = true;
      await Promise.all(squatters);
    }
  });
});
