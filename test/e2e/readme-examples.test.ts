/**
 * Every `mqttkit …` command in README.md's code blocks, run as written against a real hub with
 * `mqttkit simulate` devices: the example ids and paths are swapped for test ones in one table
 * (REPLACE), each example must exit 0 and do what its comment says (CHECKS), and one that cannot run
 * here says why (SKIPPED). An example added to README without an entry fails the test.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { sha1 } from '../../device/simulator/ota-side.js';
import { BIN, eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { freePort, type RunningMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { requireTool } from '../helpers/system-tools.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** One README line: `npx mqttkit ota push esp32_a1b2c3d4 examples/main.py   # one file: …`. */
interface Example {
  line: string;
  /** The command without its comment, spaces collapsed: the key of CHECKS and SKIPPED. */
  command: string;
  /** The README heading the example stands under (`Using your own Mosquitto`). */
  section: string;
}

/** The `mqttkit` command lines of README.md's fenced code blocks (with `npx` or without). */
export function readmeExamples(readme: string): Example[] {
  const examples: Example[] = [];
  let inBlock = false;
  let section = '';
  for (const raw of readme.split('\n')) {
    if (raw.startsWith('```')) {
      inBlock = !inBlock;
      continue;
    }
    if (!inBlock && /^#+ /.test(raw)) section = raw.replace(/^#+ /, '').trim();
    const line = raw.trim();
    if (!inBlock || !/^(npx )?mqttkit /.test(line)) continue;
    examples.push({ line, command: line.replace(/\s+#.*$/, '').replace(/\s+/g, ' '), section });
  }
  return examples;
}

/** The lines (comments cut, spaces collapsed) of the first code block under README's heading `section`. */
export function readmeBlock(readme: string, section: string): string[] {
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => l.replace(/^#+ /, '').trim() === section && /^#+ /.test(l));
  const open = lines.findIndex((l, i) => i > start && l.startsWith('```'));
  const close = lines.findIndex((l, i) => i > open && l.startsWith('```'));
  if (start < 0 || open < 0 || close < 0) return [];
  return lines.slice(open + 1, close).map((l) =>
    l
      .replace(/\s+#.*$/, '')
      .replace(/\s+/g, ' ')
      .trim(),
  );
}

/** The README section whose examples run against a real Mosquitto (the hub with --mqtt-url). */
const EXTERNAL = 'Using your own Mosquitto';

/** A command line into argv: words split on spaces, '…' and "…" kept whole (what a shell does here). */
function argv(command: string): string[] {
  const words = command.replace(/^(npx )?mqttkit /, '').match(/'[^']*'|"[^"]*"|\S+/g) ?? [];
  return words.map((w) => (/^(['"]).*\1$/.test(w) ? w.slice(1, -1) : w));
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('README examples run against simulated devices', { timeout: 600_000 }, () => {
  let hub: RunningHub;
  /** A second hub with `--registration approve`: the account examples (approve, reset, remove) run on it. */
  let approveHub: RunningHub;
  const fleets: ChildProcess[] = [];
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-readme-'));
  const backupFile = join(work, 'hub.backup');
  const restoreDir = join(work, 'restored');
  const mosquittoDir = join(work, 'mosquitto');
  let queuedJob = 0;
  let nodeRedPassword = '';
  /** README's "Using your own Mosquitto": its config dir (README's /etc/mosquitto/mqttkit) and the hub's data dir (README's default ./data). */
  const externalConf = mkdtempSync(join(tmpdir(), 'mqttkit-readme-mosquitto-'));
  const externalData = mkdtempSync(join(tmpdir(), 'mqttkit-readme-external-'));
  let mosquittoBinary: string | undefined;
  let mosquitto: RunningMosquitto | undefined;
  let externalHub: RunningHub | undefined;

  /**
   * The one mapping from README's example names to this test's: device ids to simulated devices
   * (`relay-*` matches the `relay` fleet as it is), paths to temp ones, the job number to a queued job.
   */
  const REPLACE = (): Array<[string, string]> => [
    ['/etc/mosquitto/mqttkit', externalConf],
    ['esp32_a1b2c3d4', 'readme-switch-1'],
    ['<id>', 'new-sensor'],
    ['ota cancel 12', `ota cancel ${queuedJob}`],
    ['/var/lib/mqttkit-new', restoreDir],
    ['/var/lib/mqttkit', hub.dataDir],
    ['/mnt/usb/hub.backup', backupFile],
    ['<dir>', mosquittoDir],
  ];

  const run = (args: string[], dataDir = hub.dataDir): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], {
        cwd: ROOT,
        env: { ...process.env, MQTTKIT_DATA_DIR: dataDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('exit', (status) => resolve({ status, stdout, stderr }));
    });
  const hashes = async (id: string) => {
    const answer = await run(['cmd', id, 'hashes']);
    assert.equal(answer.status, 0, answer.stderr);
    return JSON.parse(answer.stdout) as Record<string, string>;
  };
  const example = (name: string) => sha1(readFileSync(join(ROOT, 'examples', name)));
  const listed = async (dataDir = hub.dataDir) => JSON.parse((await run(['device', 'list', '--json'], dataDir)).stdout) as Array<{ id: string }>;
  const simulate = (args: string[]) => {
    const child = spawn(process.execPath, [BIN, 'simulate', '--kinds', 'switch', '--interval', '5', '--data-dir', hub.dataDir, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    fleets.push(child);
    return eventually(() => /running \d+ devices/.test(output), 60_000, `the fleet ${args.join(' ')} to connect:\n${output}`);
  };
  const state = async (id: string) => {
    const devices = JSON.parse((await run(['devices', '--json'])).stdout || '[]') as Array<{ id: string; state: string }>;
    return devices.find((d) => d.id === id)?.state;
  };

  const replaced = (text: string) => REPLACE().reduce((acc, [from, to]) => acc.split(from).join(to), text);

  /**
   * Per example (by its command as README writes it, or `<section> › <command>` where one command stands in
   * two places): what to prepare, where it runs, what it must have done. `external`: it runs in README's
   * external-broker setup (a real Mosquitto), in the test of its own below.
   */
  const CHECKS: Record<
    string,
    { setup?: () => Promise<void>; dataDir?: () => string; follow?: RegExp; external?: boolean; check?: (r: Run) => Promise<void> | void }
  > = {
    'npx mqttkit ota push esp32_a1b2c3d4 examples/main.py': {
      check: async () => {
        assert.equal((await hashes('readme-switch-1'))['main.py'], example('main.py'));
        assert.equal((await run(['cmd', 'readme-switch-1', 'msg_reboot'])).stdout.trim(), 'update of main.py', 'committed and rebooted');
      },
    },
    'npx mqttkit ota sync esp32_a1b2c3d4 examples/manifest.txt': {
      check: async () => {
        const now = await hashes('readme-switch-1');
        assert.equal(now['main.py'], example('main.py'));
        assert.equal(now['lib/relay.py'], example('lib/relay.py'));
      },
    },
    'npx mqttkit ota firmware esp32_a1b2c3d4 examples/app.bin': {
      check: async () => {
        const version = JSON.parse((await run(['cmd', 'readme-switch-1', 'getversion'])).stdout) as { firmware: string; partition: string };
        assert.equal(version.firmware, '1.27.1-sim', 'it runs the new image');
        assert.equal(version.partition, 'ota_1', 'from the spare partition');
      },
    },
    "npx mqttkit ota rollout examples/manifest.txt --devices 'relay-*' --canary 1 --concurrency 3": {
      check: async () => {
        for (const id of ['relay-switch-1', 'relay-switch-2', 'relay-switch-3']) assert.equal((await hashes(id))['lib/relay.py'], example('lib/relay.py'), id);
      },
    },
    'npx mqttkit ota jobs': {
      check: (r) => {
        for (const word of ['readme-switch-1', 'relay-switch-3', 'succeeded']) assert.ok(r.stdout.includes(word), `${word} in:\n${r.stdout}`);
      },
    },
    'npx mqttkit ota cancel 12': {
      // a job for a sleeping device waits: that is the queued job README's comment means
      setup: async () => {
        await simulate(['--devices', '1', '--kinds', 'sleepy', '--prefix', 'nap', '--interval', '0.5', '--sleep', '3600']);
        await eventually(async () => (await state('nap-sleepy-1')) === 'sleeping', 30_000, 'nap-sleepy-1 asleep');
        const queued = await run(['ota', 'push', 'nap-sleepy-1', 'examples/main.py', '--no-wait', '--json']);
        assert.equal(queued.status, 0, queued.stderr);
        queuedJob = (JSON.parse(queued.stdout) as { id: number }).id;
        assert.ok(queuedJob > 0, queued.stdout);
      },
      check: async () => {
        const jobs = JSON.parse((await run(['ota', 'jobs', '--json'])).stdout) as Array<{ id: number; state: string }>;
        assert.equal(jobs.find((j) => j.id === queuedJob)?.state, 'cancelled');
      },
    },
    'npx mqttkit cmd esp32_a1b2c3d4 stats': {
      check: (r) => assert.equal(typeof (JSON.parse(r.stdout) as { uptime_s: unknown }).uptime_s, 'number', r.stdout),
    },
    // follows until Ctrl-C: it must show the device's lines (its boot line) and end cleanly on SIGINT
    'npx mqttkit logs esp32_a1b2c3d4 -f': { follow: /boot \(/ },
    'npx mqttkit devices': {
      check: (r) => {
        const row = r.stdout.split('\n').find((l) => l.startsWith('readme-switch-1')) ?? '';
        for (const word of ['online', '0.1.0-sim', '1.27.1-sim']) assert.ok(row.includes(word), `${word} in: ${row}\n${r.stdout}`);
      },
    },
    // issue 15: the queries (readme-switch-1 reports Switch On every 5 s; its stats said mem_free null: never "low")
    'npx mqttkit query series esp32_a1b2c3d4 Switch On --from 7d --bucket 1h': {
      check: (r) => assert.match(r.stdout, /^BUCKET START\s+COUNT\s+AVG\s+MIN\s+MAX\n\d{4}-\d\d-\d\dT[\d:.]+Z\s+[1-9]\d*\s/, r.stdout),
    },
    'npx mqttkit query memory --below 20000': {
      check: (r) => assert.match(r.stdout, /^No device's last stats answer reports mem_free under 20000 bytes/, r.stdout),
    },
    'npx mqttkit query firmware 0.1.0-sim': {
      check: (r) => assert.doesNotMatch(r.stdout, /readme-switch-1/, r.stdout),
    },
    'npx mqttkit device list': {
      check: (r) => assert.ok(r.stdout.includes('relay-switch-2'), r.stdout),
    },
    'npx mqttkit device add garage-door': {
      check: async (r) => {
        assert.match(r.stdout, /password/i, r.stdout);
        assert.ok((await listed()).some((d) => d.id === 'garage-door'));
      },
    },
    'npx mqttkit device approve <id>': {
      // README's comment: with --registration approve. new-sensor's first connection makes it wait.
      setup: async () => {
        const attempt = mqtt.connect(approveHub.info.mqtt.address, {
          clientId: 'new-sensor',
          username: 'new-sensor',
          password: 'pw-new-sensor-0123456789',
          protocolVersion: 4,
          reconnectPeriod: 0,
        });
        attempt.on('error', () => {});
        await eventually(async () => /waiting for approval/.test((await run(['device', 'list'], approveHub.dataDir)).stdout), 15_000, 'new-sensor waiting');
        attempt.end(true);
      },
      dataDir: () => approveHub.dataDir,
      check: async () => {
        const client = await mqtt.connectAsync(approveHub.info.mqtt.address, {
          clientId: 'new-sensor',
          username: 'new-sensor',
          password: 'pw-new-sensor-0123456789',
          protocolVersion: 4,
          reconnectPeriod: 0,
        });
        await client.endAsync();
      },
    },
    'npx mqttkit device reset <id>': {
      dataDir: () => approveHub.dataDir,
      check: async () => {
        // a reflashed device registers a new password: its next login
        assert.match((await run(['device', 'list'], approveHub.dataDir)).stdout, /new-sensor\s+reset: next password registers/);
        const reflashed = await mqtt.connectAsync(approveHub.info.mqtt.address, {
          clientId: 'new-sensor',
          username: 'new-sensor',
          password: 'pw-new-sensor-reflashed-01',
          protocolVersion: 4,
          reconnectPeriod: 0,
        });
        await reflashed.endAsync();
      },
    },
    'npx mqttkit device remove <id>': {
      dataDir: () => approveHub.dataDir,
      check: async () => assert.ok(!(await listed(approveHub.dataDir)).some((d) => d.id === 'new-sensor')),
    },
    'npx mqttkit user add node-red --admin': {
      check: async (r) => {
        nodeRedPassword = /password[^:]*:\s+(\S+)/i.exec(r.stdout)?.[1] ?? '';
        assert.ok(nodeRedPassword, r.stdout);
        // an account that may touch every topic: it reads a device's values
        const client = await mqtt.connectAsync(hub.info.mqtt.address, {
          clientId: 'node-red',
          username: 'node-red',
          password: nodeRedPassword,
          protocolVersion: 4,
          reconnectPeriod: 0,
        });
        try {
          const seen = new Promise<string>((resolve) => client.on('message', (topic) => resolve(topic)));
          await client.subscribeAsync('HomeKit/readme-switch-1/#', { qos: 1 });
          assert.match(await seen, /^HomeKit\/readme-switch-1\//);
        } finally {
          await client.endAsync();
        }
      },
    },
    'npx mqttkit mosquitto-config <dir>': {
      check: () => assert.ok(existsSync(join(mosquittoDir, 'mosquitto.conf')), 'mosquitto.conf written'),
    },
    'mqttkit backup /mnt/usb/hub.backup --data-dir /var/lib/mqttkit': {
      check: () => assert.equal(statSync(backupFile).mode & 0o077, 0, 'readable by its owner only'),
    },
    'mqttkit restore /mnt/usb/hub.backup --data-dir /var/lib/mqttkit-new': {
      check: () => assert.ok(existsSync(join(restoreDir, 'mqttkit.db')), 'the state restored'),
    },
    // README's external-broker block, as written: the config, Mosquitto started on it, the hub with
    // --mqtt-url on the data dir the config command wrote its login to.
    [`${EXTERNAL} › npx mqttkit mosquitto-config /etc/mosquitto/mqttkit`]: {
      external: true,
      dataDir: () => externalData,
      check: async (r) => {
        const block = readmeBlock(readFileSync(join(ROOT, 'README.md'), 'utf8'), EXTERNAL);
        const config = block.find((l) => l.startsWith('mosquitto -c '))?.slice('mosquitto -c '.length);
        const start = block.find((l) => l.startsWith('npm start -- '));
        assert.ok(config && start, `README's block starts Mosquitto and the hub:\n${block.join('\n')}`);
        const conf = replaced(config);
        assert.equal(conf, join(externalConf, 'mosquitto.conf'), 'the config the command wrote is the one README starts Mosquitto with');
        assert.ok(r.stdout.includes(`mosquitto -c ${conf}`), r.stdout);
        // The one change to what README runs: its port 1883 may be taken on a shared machine (and tests
        // listen on loopback only), so the generated listener line gets a free loopback port instead.
        const port = await freePort();
        const text = readFileSync(conf, 'utf8');
        assert.match(text, /^listener 1883( 0\.0\.0\.0)?$/m, text);
        writeFileSync(conf, text.replace(/^listener 1883( 0\.0\.0\.0)?$/m, `listener ${port} 127.0.0.1`));
        mosquitto = await startMosquitto(mosquittoBinary!, { config: conf, port });
        const args = argv(start.replace(/^npm start -- /, 'mqttkit ')).map((a) => a.replace('127.0.0.1:1883', `127.0.0.1:${port}`));
        assert.deepEqual(args, ['--mqtt-url', `mqtt://127.0.0.1:${port}`]);
        externalHub = await startHub({ dataDir: externalData, args });
        assert.equal(externalHub.info.mqtt.embedded, false, 'the hub logged in to Mosquitto with the account just made');
      },
    },
    [`${EXTERNAL} › npx mqttkit device add garage-door`]: {
      external: true,
      dataDir: () => externalData,
      check: async (r) => {
        const password = /password:\s+(\S+)/.exec(r.stdout)?.[1];
        assert.ok(password, r.stdout);
        // The device logs in to Mosquitto with the password printed, and the hub hears it there.
        const door = await mqtt.connectAsync(mosquitto!.url, {
          clientId: 'garage-door',
          username: 'garage-door',
          password,
          protocolVersion: 4,
          reconnectPeriod: 0,
        });
        door.on('error', () => {});
        try {
          await door.publishAsync('HomeKit/garage-door/ContactSensor/ContactSensorState', '1', { qos: 1 });
          await eventually(
            async () => {
              const devices = JSON.parse((await run(['devices', '--json'], externalData)).stdout || '[]') as Array<{ id: string; state: string }>;
              return devices.find((d) => d.id === 'garage-door')?.state === 'online';
            },
            15_000,
            'garage-door online at the hub, through Mosquitto',
          );
        } finally {
          await door.endAsync();
        }
        await assert.rejects(
          mqtt.connectAsync(mosquitto!.url, {
            clientId: 'garage-door',
            username: 'garage-door',
            password: 'not-its-password-123',
            protocolVersion: 4,
            reconnectPeriod: 0,
          }),
          'Mosquitto refuses another password',
        );
      },
    },
  };

  /** Examples that cannot run here, by their whole README line, and why (none today: keep it that way). */
  const SKIPPED: Record<string, string> = {};
  /** An example's entry: under its section when README has the command twice, else by the command. */
  const checkKey = (e: Example) => (`${e.section} › ${e.command}` in CHECKS ? `${e.section} › ${e.command}` : e.command);

  before(async () => {
    hub = await startHub({ args: ['--no-homekit', '--ota-reboot-timeout', '20s'] });
    approveHub = await startHub({ args: ['--no-homekit', '--registration', 'approve'] });
    await simulate(['--devices', '1', '--prefix', 'readme']);
    await simulate(['--devices', '3', '--prefix', 'relay']);
    for (const id of ['readme-switch-1', 'relay-switch-1', 'relay-switch-2', 'relay-switch-3'])
      await eventually(async () => (await state(id)) === 'online', 20_000, `${id} online`);
  });
  after(async () => {
    for (const fleet of fleets) fleet.kill('SIGKILL');
    await externalHub?.stop('SIGKILL');
    await mosquitto?.stop();
    rmSync(externalConf, { recursive: true, force: true });
    rmSync(externalData, { recursive: true, force: true });
    await hub?.stop('SIGKILL');
    await approveHub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    if (approveHub) removeDataDir(approveHub.dataDir);
    rmSync(work, { recursive: true, force: true });
  });

  it('every example has a check or a reason it is skipped, and no table entry is stale', () => {
    const examples = readmeExamples(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    assert.ok(examples.length >= 15, `found only ${examples.length} examples`);
    const unknown = examples.filter((e) => !(checkKey(e) in CHECKS) && !(e.line in SKIPPED)).map((e) => e.line);
    assert.deepEqual(unknown, [], 'README examples without a check or a skip reason');
    const stale = [
      ...Object.keys(CHECKS).filter((c) => !examples.some((e) => checkKey(e) === c)),
      ...Object.keys(SKIPPED).filter((l) => !examples.some((e) => e.line === l)),
    ];
    assert.deepEqual(stale, [], 'table entries README no longer has');
  });

  it('each example runs against the hub and its simulated devices, exits 0 and does what its comment says', async (t) => {
    const examples = readmeExamples(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    for (const example of examples) {
      if (example.line in SKIPPED) {
        t.diagnostic(`skipped: ${example.line} (${SKIPPED[example.line]})`);
        continue;
      }
      const entry = CHECKS[checkKey(example)]!;
      if (entry.external) continue; // run by the external-broker test below
      await runExample(t, example);
    }
  });

  it(`README's "${EXTERNAL}" block runs end to end: the config, Mosquitto on it, the hub with --mqtt-url, device add, the device connecting`, async (t) => {
    mosquittoBinary = requireTool(t, 'mosquitto', ['mosquitto', '/usr/sbin/mosquitto'], 'apt-get install mosquitto');
    if (!mosquittoBinary) return;
    const examples = readmeExamples(readFileSync(join(ROOT, 'README.md'), 'utf8')).filter((e) => CHECKS[checkKey(e)]?.external);
    assert.deepEqual(
      examples.map((e) => e.command),
      ['npx mqttkit mosquitto-config /etc/mosquitto/mqttkit', 'npx mqttkit device add garage-door'],
    );
    for (const example of examples) await runExample(t, example);
  });

  /** Runs one example as README writes it (names swapped by REPLACE), and its check. */
  async function runExample(t: { diagnostic: (message: string) => void }, example: Example): Promise<void> {
    const entry = CHECKS[checkKey(example)]!;
    await entry.setup?.();
    const command = replaced(example.command);
    const args = argv(command);
    const dataDir = entry.dataDir?.() ?? hub.dataDir;
    let result: Run;
    if (entry.follow) {
      const pattern = entry.follow;
      const child = spawn(process.execPath, [BIN, ...args], {
        cwd: ROOT,
        env: { ...process.env, MQTTKIT_DATA_DIR: dataDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // a follower ends at Ctrl-C: by its own exit 0 or by the signal itself (a shell's 130), never by an error
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code === 130 || signal === 'SIGINT' ? 0 : code)));
      await eventually(() => pattern.test(stdout), 15_000, `${example.command} to show ${pattern}:\n${stdout}${stderr}`);
      child.kill('SIGINT');
      result = { status: await exited, stdout, stderr };
    } else result = await run(args, dataDir);
    assert.equal(result.status, 0, `${example.line}\nran as: mqttkit ${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
    await entry.check?.(result);
    t.diagnostic(`ok: ${example.command}`);
  }
});
