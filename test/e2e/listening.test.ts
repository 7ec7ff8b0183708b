/**
 * Issue 12, items 1-3: devices written by the book (docs/protocol.md, docs/ota.md) that the hub used to
 * get wrong, played by scripted MQTT devices against a real hub process (embedded broker):
 * - [O-12] a device that logs on stat/<id>/Log while it answers (a boot line, warnings): the hub still
 *   records its real `getversion` (firmware, last reboot), and `mqttkit cmd` prints the real answer;
 * - [P-21] a device that says `online` and subscribes half a second later is still asked its questions,
 *   in every session, and its queued job still runs;
 * - [O-7] a device that says `sleeping` first and then listens, seeing `pending` = 1, is served.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { cliAsync, connectDevice } from '../helpers/mqtt-device.js';
import { requireTool } from '../helpers/system-tools.js';

interface Behaviour {
  /** Published on stat/<id>/Log before each answer (unsolicited log lines). */
  chatter?: (command: string) => string[];
  /** Echo request ids (and say `"rid": 1` in getversion). */
  echo?: boolean;
  /** Subscribe this many ms after `$state online` (0: before it, as the docs now say). */
  subscribeAfterMs?: number;
  /** Subscribe to the retained pending flag too. */
  pending?: boolean;
  firmware?: string;
}

/** A device played over MQTT.js: protocol 2 commands, pull transfers, staged files and commit. */
class ScriptedDevice {
  client!: MqttClient;
  /** Commands received per session (index = session number from 0). */
  readonly sessions: string[][] = [];
  readonly staged = new Map<string, Buffer>();
  readonly files = new Map<string, Buffer>();
  pendingFlag = '';
  /** Every value of the flag it received, in order (a quick job raises and clears it between two looks). */
  readonly pendingSeen: string[] = [];

  constructor(
    private readonly url: string,
    readonly id: string,
    private readonly behaviour: Behaviour,
  ) {}

  get commands(): string[] {
    return this.sessions.at(-1) ?? [];
  }

  /** One session: connect, subscribe and say `online` in the order the behaviour says. */
  async wake(): Promise<void> {
    const id = this.id;
    this.sessions.push([]);
    this.client = await connectDevice(this.url, id, { will: { topic: `HomeKit/${id}/$state`, payload: 'offline' } });
    this.client.on('error', () => {});
    // An answer still in flight when the device leaves (the hub's retry can cross its sleep) is dropped, as a real device's would be.
    this.client.on('message', (topic, payload) => void this.#handle(topic, payload.toString()).catch(() => {}));
    const filters = [`cmnd/${id}/OTA`, `${id}/OTA`, ...(this.behaviour.pending ? [`cmnd/${id}/OTA/pending`] : [])];
    const later = this.behaviour.subscribeAfterMs ?? 0;
    if (later === 0) await this.client.subscribeAsync(filters, { qos: 1 });
    await this.say(`HomeKit/${id}/$state`, 'online', true);
    await this.say(`HomeKit/${id}/Switch/On`, '0', true);
    if (later > 0) {
      await new Promise((r) => setTimeout(r, later)); // the device's own pace, part of the scenario
      await this.client.subscribeAsync(filters, { qos: 1 });
    }
  }

  async say(topic: string, text: string, retain = false): Promise<void> {
    await this.client.publishAsync(topic, text, { qos: 1, retain });
  }

  /** Leaves cleanly, as before deep sleep. */
  async sleep(): Promise<void> {
    await this.client.endAsync();
  }

  async #handle(topic: string, text: string): Promise<void> {
    const id = this.id;
    if (topic === `cmnd/${id}/OTA/pending`) {
      this.pendingFlag = text;
      this.pendingSeen.push(text);
      return;
    }
    if (topic === `${id}/OTA`) return this.#transfer(text);
    const rid = /^#\d+ /.exec(text)?.[0] ?? '';
    const command = text.slice(rid.length);
    this.commands.push(text);
    for (const line of this.behaviour.chatter?.(command) ?? []) await this.say(`stat/${id}/Log`, line);
    const echo = this.behaviour.echo ? rid : '';
    const answer = (value: unknown) => this.say(`stat/${id}/Log`, echo + (typeof value === 'string' ? value : JSON.stringify(value)));
    switch (command.split(' ')[0]) {
      case 'getversion':
        return answer({ firmware: this.behaviour.firmware ?? '1.0.0', app: 'app-1', library: 'scripted', ota: 2, ...(this.behaviour.echo ? { rid: 1 } : {}) });
      case 'msg_reboot':
        return answer('watchdog reset');
      case 'msg_exception':
        return answer('no exception recorded');
      case 'stats':
        return answer({ uptime_s: 5, published: 3 });
      case 'discard': {
        const discarded = [...this.staged.keys()];
        this.staged.clear();
        return answer({ discarded });
      }
      case 'commit': {
        const committed = [...this.staged.keys()];
        for (const [path, bytes] of this.staged) this.files.set(path, bytes);
        this.staged.clear();
        return answer({ committed });
      }
      default:
        return answer(`unknown command ${command.split(' ')[0]} (known: getversion, msg_reboot, msg_exception, stats, discard, commit)`);
    }
  }

  async #transfer(text: string): Promise<void> {
    const [host, port, file, hash] = text.split('|') as [string, string, string, string];
    const bytes = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = connect({ host, port: Number(port) });
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('end', () => resolve(Buffer.concat(chunks)));
      socket.on('error', reject);
    }).catch(() => undefined);
    const actual = bytes && createHash('sha1').update(bytes).digest('hex');
    const ok = actual === hash;
    if (ok) this.staged.set(file, bytes!);
    await this.say(`stat/${this.id}/OTA`, JSON.stringify({ file, ok, hash: actual ?? null, error: ok ? null : 'hash mismatch' }));
  }
}

interface DeviceRow {
  id: string;
  state: string;
  firmware: string | null;
  lastReboot: string | null;
  lastException: string | null;
}

interface JobJson {
  id: number;
  state: string;
  message: string | null;
}

describe('the hub asks and serves devices when they listen, and takes only answers as answers (issue 12)', { timeout: 240_000 }, () => {
  let hub: RunningHub;
  const devices: ScriptedDevice[] = [];
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-listening-'));

  const rows = async (): Promise<DeviceRow[]> => JSON.parse((await cliAsync(['devices', '--json', '--data-dir', hub.dataDir])).stdout) as DeviceRow[];
  const row = async (id: string) => (await rows()).find((d) => d.id === id);
  const device = (id: string, behaviour: Behaviour) => {
    const d = new ScriptedDevice(hub.info.mqtt.address, id, behaviour);
    devices.push(d);
    return d;
  };
  const queuePush = async (id: string, content: string, name: string): Promise<number> => {
    const path = join(work, name);
    writeFileSync(path, content);
    const result = await cliAsync(['ota', 'push', id, path, '--as', name, '--no-reboot', '--no-wait', '--json', '--data-dir', hub.dataDir]);
    assert.equal(result.status, 0, result.stderr);
    return (JSON.parse(result.stdout) as JobJson).id;
  };
  const job = async (jobId: number): Promise<JobJson> => {
    const result = await cliAsync(['ota', 'jobs', '--json', '--data-dir', hub.dataDir]);
    return (JSON.parse(result.stdout) as JobJson[]).find((j) => j.id === jobId)!;
  };
  const jobEnded = (jobId: number, ms: number) =>
    eventually(
      async () => {
        const j = await job(jobId);
        return ['succeeded', 'failed', 'cancelled', 'rolled-back'].includes(j.state) ? j : undefined;
      },
      ms,
      `job #${jobId} to end`,
    );

  before(async () => {
    hub = await startHub();
  });
  after(async () => {
    for (const d of devices) await d.client?.endAsync(true).catch(() => {});
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    rmSync(work, { recursive: true, force: true });
  });

  it('[O-12] log lines published while the hub asks are never taken as answers: the real getversion, last reboot and cmd answers are recorded', async () => {
    // A boot line right after `online`, and a warning before every answer: all allowed at any time.
    const chatter = (command: string) => (command === 'getversion' ? ['boot: app 2.4.1 starting', 'warning: sensor slow'] : ['warning: sensor slow']);
    const d = device('rid-chatty', { echo: true, chatter, firmware: '2.4.1' });
    await d.wake();
    const recorded = await eventually(
      async () => {
        const r = await row('rid-chatty');
        return r?.firmware && r.lastException ? r : undefined;
      },
      15_000,
      'what rid-chatty says about itself',
    );
    assert.equal(recorded.firmware, '2.4.1', 'the real getversion answer, not the boot line');
    assert.equal(recorded.lastReboot, 'watchdog reset');
    assert.equal(recorded.lastException, 'no exception recorded');
    // The session's first getversion goes without an id (the hub cannot know yet); after it, every command has one.
    assert.equal(d.commands[0], 'getversion');
    assert.match(d.commands[1]!, /^#\d+ msg_reboot$/);
    assert.match(d.commands[2]!, /^#\d+ msg_exception$/);

    // `mqttkit cmd` through the hub: the answer is the device's answer, without its id, not the warning before it.
    const cmd = await cliAsync(['cmd', 'rid-chatty', 'stats', '--data-dir', hub.dataDir]);
    assert.equal(cmd.status, 0, cmd.stderr);
    assert.equal(cmd.stdout.trim(), '{"uptime_s":5,"published":3}');

    // A device that does not echo ids: its JSON answers are still found among non-JSON log lines.
    const plain = device('rid-plain', { chatter: () => ['boot: plain firmware starting'], firmware: '0.9.0' });
    await plain.wake();
    const firmware = await eventually(async () => (await row('rid-plain'))?.firmware || undefined, 15_000, 'rid-plain firmware');
    assert.equal(firmware, '0.9.0');
    assert.ok(
      plain.commands.every((c) => !c.startsWith('#')),
      'no ids to a device that does not echo',
    );
  });

  it('[P-21] a device that subscribes half a second after online is asked in every session, and its queued job runs', async () => {
    const d = device('late-sub', { subscribeAfterMs: 500, firmware: '1.1.0' });
    await d.wake();
    assert.equal(await eventually(async () => (await row('late-sub'))?.firmware || undefined, 15_000, 'late-sub asked in its first session'), '1.1.0');
    await d.sleep();
    await eventually(async () => (await row('late-sub'))?.state === 'offline', 10_000, 'late-sub offline');

    // A job queued while it is away runs in its next session, once it listens, and it is asked again.
    const jobId = await queuePush('late-sub', 'VALUE = 2\n', 'late.py');
    await d.wake();
    const ended = await jobEnded(jobId, 60_000);
    assert.equal(ended.state, 'succeeded', ended.message ?? '');
    assert.equal(d.files.get('late.py')?.toString(), 'VALUE = 2\n');
    await eventually(
      () => d.commands.includes('getversion') && d.commands.some((c) => c.endsWith('msg_exception')),
      15_000,
      'late-sub asked again in its second session',
    );
  });

  it('[O-7] a device that says sleeping, then listens and sees pending = 1, gets its job while it is still connected', async () => {
    const d = device('says-sleep-first', { pending: true });
    await d.wake();
    await eventually(async () => (await row('says-sleep-first'))?.firmware || undefined, 15_000, 'says-sleep-first asked');
    await d.say('HomeKit/says-sleep-first/$state', 'sleeping 60', true);
    await eventually(async () => (await row('says-sleep-first'))?.state === 'sleeping', 10_000, 'says-sleep-first sleeping');
    // It listens before it disconnects: the job queued now raises `pending`, and it stays awake for it.
    const jobId = await queuePush('says-sleep-first', 'SLEEPY = 1\n', 'sleepy.py');
    await eventually(() => d.pendingSeen.includes('1'), 10_000, 'pending = 1 seen by the device');
    const ended = await jobEnded(jobId, 45_000);
    assert.equal(ended.state, 'succeeded', ended.message ?? '');
    assert.equal(d.files.get('sleepy.py')?.toString(), 'SLEEPY = 1\n');
    await eventually(() => d.pendingFlag === '', 10_000, 'pending cleared once no job is left');
    await d.sleep();
  });
});

describe('[P-21] with an external broker the hub asks until the device answers', { timeout: 120_000 }, () => {
  it('a device that subscribes half a second after online is still asked (the hub retries), in every session', async (t) => {
    const binary = requireTool(t, 'mosquitto', ['mosquitto', '/usr/sbin/mosquitto'], 'apt-get install mosquitto');
    if (!binary) return;
    const mosquitto = await startMosquitto(binary);
    const hub = await startHub({ args: ['--mqtt-url', mosquitto.url] });
    const d = new ScriptedDevice(mosquitto.url, 'ext-late', { subscribeAfterMs: 500, firmware: '3.0.0' });
    try {
      const firmware = async () =>
        (JSON.parse((await cliAsync(['devices', '--json', '--data-dir', hub.dataDir])).stdout) as DeviceRow[]).find((r) => r.id === 'ext-late')?.firmware ||
        undefined;
      await d.wake();
      assert.equal(await eventually(firmware, 30_000, 'ext-late asked in its first session'), '3.0.0');
      await d.sleep();
      await d.wake();
      await eventually(() => d.commands.includes('getversion'), 30_000, 'ext-late asked again in its second session');
    } finally {
      await d.client?.endAsync(true).catch(() => {});
      await hub.stop('SIGKILL');
      removeDataDir(hub.dataDir);
      await mosquitto.stop();
    }
  });
});
