/**
 * The CLI's listings as people read them (issue 14): a header row, aligned columns, human times, the
 * health column README promises for `devices`, `--json` everywhere; and commands that name an unknown
 * device at once instead of waiting in silence. Against a real hub and real MQTT devices.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, cliBounded, connectDevice } from '../helpers/mqtt-device.js';

/** Each header's column starts where the cell under it starts, in every row. */
function assertAligned(output: string, header: string[]): string[] {
  const lines = output.trimEnd().split('\n');
  const head = lines[0]!;
  for (const word of header) assert.ok(head.includes(word), `header ${word} in: ${head}`);
  const starts = header.map((h) => head.indexOf(h));
  for (const line of lines.slice(1))
    for (const start of starts.slice(1))
      assert.ok(line[start - 1] === ' ' && line[start] !== ' ', `a column starts at ${start} in "${line}" (header "${head}")`);
  return lines;
}

describe('CLI listings', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let device: MqttClient;
  const d = () => ['--data-dir', hub.dataDir];

  before(async () => {
    hub = await startHub({ args: ['--log-level', 'warn'] });
    device = await connectDevice(hub.info.mqtt.address, 'listing-temp-1');
    device.on('error', () => {});
    await device.publishAsync('HomeKit/listing-temp-1/TemperatureSensor/CurrentTemperature', '20.5', { qos: 1 });
    await device.publishAsync('stat/listing-temp-1/Log', 'booted: hello from the device', { qos: 1 });
    await device.publishAsync('stat/listing-temp-1/Log', 'sneaky \u001b[2J\u001b]0;owned\u0007 line', { qos: 1 });
    await eventually(() => JSON.parse(cli(['devices', '--json', ...d()]).stdout).length === 1, 10_000, 'the device to be known');
    await eventually(() => cli(['logs', 'listing-temp-1', ...d()]).stdout.includes('hello from the device'), 10_000, 'the log line');
  });

  after(async () => {
    await device?.endAsync().catch(() => {});
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('`devices` has a header, aligned columns, a health column and "ago" times; --json has the health too', () => {
    const result = cli(['devices', ...d()]);
    assert.equal(result.status, 0, result.stderr);
    const lines = assertAligned(result.stdout, ['DEVICE', 'STATE', 'HEALTH', 'APP', 'FIRMWARE', 'ADDRESS', 'LAST SEEN']);
    const row = lines.find((l) => l.startsWith('listing-temp-1'));
    assert.ok(row, result.stdout);
    assert.match(row, /\bonline\b.*\bok\b/, 'state online, health ok');
    assert.match(row, /(just now|\d+ \w+\.? ago)$/, `last seen in human time: ${row}`);
    assert.doesNotMatch(row, /\d{4}-\d\d-\d\dT/, 'no ISO time for people');
    const json = JSON.parse(cli(['devices', '--json', ...d()]).stdout) as Array<{ id: string; health: string; lastSeen: string }>;
    assert.equal(json[0]!.health, 'ok');
    assert.match(json[0]!.lastSeen, /^\d{4}-\d\d-\d\dT/, 'scripts keep exact times');
  });

  it('`device show` names services and values as the dashboard does ("Temperature 20.5 °C"), not in HAP\'s words', async () => {
    const result = await cliBounded(['device', 'show', 'listing-temp-1', ...d()]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^service +Temperature sensor: Temperature 20\.5 °C$/m, result.stdout);
    assert.doesNotMatch(result.stdout, /CurrentTemperature|\{"/, 'no raw HAP names or JSON for people');
  });

  it('`device list`, `user list` and `token list` have headers and human times', () => {
    const devices = cli(['device', 'list', ...d()]);
    assert.equal(devices.status, 0, devices.stderr);
    const row = assertAligned(devices.stdout, ['DEVICE', 'ACCOUNT', 'STATE', 'SERVICES', 'LAST LOGIN', 'ADDRESS']).find((l) => l.startsWith('listing-temp-1'));
    assert.match(row ?? '', /(just now|ago)/, devices.stdout);

    assert.equal(cli(['user', 'add', 'listing-admin', '--admin', ...d()]).status, 0);
    const users = cli(['user', 'list', ...d()]);
    assert.equal(users.status, 0, users.stderr);
    const userRow = assertAligned(users.stdout, ['ADMIN', 'LAST LOGIN']).find((l) => l.startsWith('listing-admin'));
    assert.match(userRow ?? '', /never$/, users.stdout);

    assert.equal(cli(['token', 'create', 'listing-token', ...d()]).status, 0);
    const tokens = cli(['token', 'list', ...d()]);
    assert.equal(tokens.status, 0, tokens.stderr);
    const tokenRow = assertAligned(tokens.stdout, ['TOKEN', 'CREATED']).find((l) => l.startsWith('listing-token'));
    assert.match(tokenRow ?? '', /(just now|ago)$/, tokens.stdout);
  });

  it('`ota jobs` has a header, aligned columns and created/started/finished as human times', async () => {
    // The device never answers OTA: its job is cancelled, so it shows a created and a finished time.
    const queued = cli(['ota', 'push', 'listing-temp-1', 'package.json', '--no-wait', '--json', ...d()]);
    assert.equal(queued.status, 0, queued.stdout + queued.stderr);
    const job = JSON.parse(queued.stdout) as { id: number };
    cli(['ota', 'cancel', String(job.id), ...d()]);
    const jobs = cli(['ota', 'jobs', ...d()]);
    assert.equal(jobs.status, 0, jobs.stderr);
    const row = assertAligned(jobs.stdout, ['JOB', 'KIND', 'DEVICE', 'STATE', 'CREATED', 'STARTED', 'FINISHED', 'MESSAGE']).find((l) =>
      l.startsWith(`#${job.id} `),
    );
    assert.ok(row, jobs.stdout);
    assert.match(row, /push\s+listing-temp-1\s+\S+\s+(just now|\d+ \w+\.? ago)/, row);
    assert.doesNotMatch(row, /\d{4}-\d\d-\d\dT/);
  });

  it('`logs --json` prints one JSON object a line; `device remove --json` says what it removed', () => {
    const logs = cli(['logs', 'listing-temp-1', '--json', ...d()]);
    assert.equal(logs.status, 0, logs.stderr);
    const lines = logs.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { device: string; kind: string; text: string; at: string });
    const line = lines.find((l) => l.text.includes('hello from the device'));
    assert.ok(line, logs.stdout);
    assert.equal(line.kind, 'Log');
    assert.equal(line.device, 'listing-temp-1');
    assert.match(line.at, /^\d{4}-\d\d-\d\dT/);

    assert.equal(cli(['device', 'add', 'listing-gone', ...d()]).status, 0);
    const removed = cli(['device', 'remove', 'listing-gone', '--json', ...d()]);
    assert.equal(removed.status, 0, removed.stderr);
    assert.equal((JSON.parse(removed.stdout) as { removed: string }).removed, 'listing-gone');
  });

  it("`logs` shows a device's escape sequences as text: a device cannot clear the screen or retitle the window", async () => {
    const logs = await eventually(() => {
      const out = cli(['logs', 'listing-temp-1', ...d()]).stdout;
      return out.includes('sneaky') ? out : undefined;
    });
    assert.ok(!logs.includes('\u001b') && !logs.includes('\u0007'), JSON.stringify(logs));
    assert.match(logs, /sneaky \\x1b\[2J\\x1b\]0;owned\\x07 line/);
    // --json keeps the exact text (JSON escapes it)
    const json = cli(['logs', 'listing-temp-1', '--json', ...d()]).stdout;
    assert.ok(json.includes('sneaky \\u001b[2J'), json);
  });

  it('`logs`, `logs -f` and `cmd` name an unknown device at once and exit non-zero', async () => {
    for (const args of [
      ['logs', 'no-such-device'],
      ['logs', 'no-such-device', '-f'],
      ['cmd', 'no-such-device', 'stats'],
    ]) {
      const started = Date.now();
      // A follow that waits would never end: the test gives it 20 s, then counts it as a wait.
      const result = await cliBounded([...args, ...d()], 20_000);
      assert.ok(!result.killed, `${args.join(' ')} ended (it did not wait for a device that does not exist)`);
      assert.notEqual(result.status, 0, `${args.join(' ')} exits non-zero`);
      assert.match(result.stderr, /no device no-such-device/, `${args.join(' ')}: ${result.stderr}`);
      assert.ok(Date.now() - started < 15_000, `${args.join(' ')} said so at once`);
    }
  });

  it('following an OTA job has a deadline: past --timeout the CLI says the job goes on and exits non-zero', async () => {
    // The device never answers OTA: without a deadline the CLI would follow its job for ever.
    const result = await cliBounded(['ota', 'push', 'listing-temp-1', 'package.json', '--timeout', '2', ...d()], 30_000);
    assert.ok(!result.killed, 'the CLI ended by itself');
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /stopped following after 2 s \(--timeout\); job #(\d+) (keeps running in the hub|stays queued)/, result.stderr);
    const id = /job #(\d+)/.exec(result.stderr)![1]!;
    cli(['ota', 'cancel', id, ...d()]);
    const bad = cli(['ota', 'push', 'listing-temp-1', 'package.json', '--timeout', 'soon', ...d()]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--timeout: 'soon' is not a whole number/);
    const jobs = JSON.parse(cli(['ota', 'jobs', '--json', ...d()]).stdout) as Array<{ id: number }>;
    assert.ok(
      jobs.every((j) => j.id <= Number(id)),
      'bad input queued nothing',
    );
  });

  it('an unknown command exits non-zero and suggests the right one', () => {
    const result = cli(['devics', ...d()]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /unknown command 'devics'[\s\S]*Did you mean .*devices/);
  });
});
