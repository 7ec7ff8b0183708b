/**
 * Issue 17, `mqttkit service install|uninstall` (docs/service.md): the systemd unit it writes, checked
 * as text and by `systemd-analyze verify` (when installed), and run: the unit's own ExecStart= line
 * starts this install's hub on the unit's data dir. A unit we did not write is neither replaced nor
 * removed without --force. systemctl is not run (the unit goes to --unit-dir).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readRuntime } from '../../src/store/runtime-file.js';
import { BIN, eventually, PINCODE } from '../helpers/hub-process.js';
import { cli } from '../helpers/mqtt-device.js';
import { findTool } from '../helpers/system-tools.js';

/** The words of an ExecStart= line as systemd reads them: double quotes group, `\"` `\\` escape, `%%` and `$$` are one sign. */
function execWords(line: string): string[] {
  const words: string[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of line.matchAll(pattern)) {
    const word = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!;
    words.push(word.replace(/%%/g, '%').replace(/\$\$/g, '$'));
  }
  return words;
}

const settings = (unit: string, key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);
const analyze = findTool('systemd-analyze', ['systemd-analyze', '/usr/bin/systemd-analyze']);

describe('mqttkit service install / uninstall', { timeout: 120_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'mqttkit-service-'));
  const unitDir = join(root, 'units');
  const unitFile = join(unitDir, 'mqttkit.service');
  const dataDir = join(root, 'hub-data');
  after(() => rmSync(root, { recursive: true, force: true }));
  const loopback = ['--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--hap-host', '127.0.0.1', '--hap-port', '0', '--http-host', '127.0.0.1'];

  it('writes a user unit: this node and this install, the start options, restart on failure, the hardening', () => {
    const answer = cli(['service', 'install', '--user', '--unit-dir', unitDir, '--data-dir', dataDir, '--', ...loopback]);
    assert.equal(answer.status, 0, answer.stderr);
    const unit = readFileSync(unitFile, 'utf8');
    assert.ok(unit.startsWith('# Written by `mqttkit service install`'), unit);
    const exec = execWords(settings(unit, 'ExecStart')[0]!);
    assert.equal(exec[0], realpathSync(process.execPath), 'the exact node that ran the install');
    assert.ok(exec.includes(realpathSync(BIN)), `this install's bin/mqttkit.js: ${exec.join(' ')}`);
    assert.deepEqual(exec.slice(exec.indexOf('start')), ['start', '--data-dir', dataDir, ...loopback]);
    assert.deepEqual(settings(unit, 'Restart'), ['on-failure']);
    assert.deepEqual(settings(unit, 'ProtectSystem'), ['strict']);
    assert.deepEqual(settings(unit, 'ReadWritePaths'), [dataDir]);
    assert.deepEqual(settings(unit, 'NoNewPrivileges'), ['true']);
    // A user unit's data dir is usually in home: readable, and the data dir writable through ReadWritePaths=.
    assert.deepEqual(settings(unit, 'ProtectHome'), ['read-only']);
    assert.deepEqual(settings(unit, 'PrivateUsers'), ['true'], 'a user unit applies the sandbox only with PrivateUsers=true');
    assert.deepEqual(settings(unit, 'WantedBy'), ['default.target']);
    assert.match(answer.stdout, /systemctl --user daemon-reload && systemctl --user enable --now mqttkit/, answer.stdout);
    rmSync(unitFile);
  });

  it('passes systemd-analyze verify', (t) => {
    if (!analyze) return t.skip('systemd-analyze is not installed (it comes with systemd)');
    const dir = join(root, 'verify-data');
    const written = cli(['service', 'install', '--user', '--unit-dir', unitDir, '--data-dir', dir]);
    assert.equal(written.status, 0, written.stderr);
    const verify = spawnSync(analyze, ['verify', unitFile], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(
      verify.stderr
        .split('\n')
        .filter((l) => l.includes('mqttkit.service'))
        .join('\n'),
      '',
      'no warning about the unit',
    );
    // The system unit too (printed with --dry-run: nothing is written to /etc).
    const system = cli(['service', 'install', '--system', '--run-as', 'daemon', '--data-dir', '/var/lib/mqttkit-verify', '--dry-run']);
    assert.equal(system.status, 0, system.stderr);
    const systemFile = join(root, 'system', 'mqttkit.service');
    mkdirSync(join(root, 'system'), { recursive: true });
    writeFileSync(
      systemFile,
      system.stdout
        .split('\n')
        .filter((l) => !l.startsWith('# /') && !l.startsWith('# would run'))
        .join('\n'),
    );
    const verifySystem = spawnSync(analyze, ['verify', systemFile], { encoding: 'utf8' });
    assert.equal(verifySystem.status, 0, verifySystem.stderr);
    // systemd-analyze says "Failed to parse …, ignoring" for a bad line and still exits 0: its words about the unit are the check.
    assert.equal(
      verifySystem.stderr
        .split('\n')
        .filter((l) => l.includes('mqttkit.service'))
        .join('\n'),
      '',
      'no warning about the system unit',
    );
    rmSync(unitFile);
  });

  it('prints a system unit with --dry-run (User=, multi-user.target, /etc/systemd/system) and writes nothing', () => {
    const answer = cli(['service', 'install', '--system', '--run-as', 'nobody', '--data-dir', '/var/lib/mqttkit-dry', '--dry-run', '--', '--http-tls', 'auto']);
    assert.equal(answer.status, 0, answer.stderr);
    assert.match(answer.stdout, /^# \/etc\/systemd\/system\/mqttkit\.service \(not written: --dry-run\)/m);
    assert.deepEqual(settings(answer.stdout, 'User'), ['nobody']);
    assert.deepEqual(settings(answer.stdout, 'ReadWritePaths'), ['/var/lib/mqttkit-dry']);
    assert.deepEqual(settings(answer.stdout, 'PrivateTmp'), ['true']);
    assert.deepEqual(settings(answer.stdout, 'WantedBy'), ['multi-user.target']);
    assert.match(settings(answer.stdout, 'ExecStart')[0]!, / --http-tls auto$/);
    // Nothing in home is needed by this install: home is hidden; else read-only.
    const inHome = [process.execPath, BIN].some((p) => /^\/(home|root)\//.test(realpathSync(p)));
    assert.deepEqual(settings(answer.stdout, 'ProtectHome'), [inHome ? 'read-only' : 'true']);
    assert.match(answer.stdout, /would run: systemctl daemon-reload && systemctl enable --now mqttkit/);
    assert.equal(existsSync('/var/lib/mqttkit-dry'), false, 'no data dir made');
  });

  it("runs: the unit's ExecStart= starts this install's hub on the unit's data dir", async () => {
    const answer = cli(['service', 'install', '--user', '--unit-dir', unitDir, '--data-dir', join(root, 'run-data'), '--', ...loopback, '--pincode', PINCODE]);
    assert.equal(answer.status, 0, answer.stderr);
    const unit = readFileSync(unitFile, 'utf8');
    const [command, ...args] = execWords(settings(unit, 'ExecStart')[0]!);
    const env = Object.fromEntries(settings(unit, 'Environment').map((e) => e.split('=', 2) as [string, string]));
    assert.ok(env.MALLOC_ARENA_MAX, `the launcher's memory settings: ${JSON.stringify(env)}`);
    const child = spawn(command!, args, { cwd: settings(unit, 'WorkingDirectory')[0], env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await eventually(
        () => output.includes('mqttkit is running') && readRuntime(join(root, 'run-data'))?.pid === child.pid,
        30_000,
        `the hub to start:\n${output}`,
      );
      child.kill('SIGTERM');
      assert.equal(await exited, 0, output);
    } finally {
      child.kill('SIGKILL');
    }
    rmSync(unitFile);
  });

  it('refuses to replace or remove a unit it did not write (naming it, and --force), and uninstall removes its own but keeps the data dir', () => {
    mkdirSync(unitDir, { recursive: true });
    writeFileSync(unitFile, '[Service]\nExecStart=/usr/local/bin/someone-elses-hub\n');
    const replace = cli(['service', 'install', '--user', '--unit-dir', unitDir, '--data-dir', join(root, 'mine')]);
    assert.equal(replace.status, 1);
    assert.ok(replace.stderr.includes(`${unitFile} exists and was not written by`), replace.stderr);
    assert.match(replace.stderr, /--force/);
    assert.match(readFileSync(unitFile, 'utf8'), /someone-elses-hub/, 'kept as it was');
    const remove = cli(['service', 'uninstall', '--user', '--unit-dir', unitDir]);
    assert.equal(remove.status, 1);
    assert.match(remove.stderr, /not written by .* --force to remove it/);
    assert.ok(existsSync(unitFile));
    const forced = cli(['service', 'install', '--user', '--unit-dir', unitDir, '--data-dir', join(root, 'mine'), '--force']);
    assert.equal(forced.status, 0, forced.stderr);
    assert.doesNotMatch(readFileSync(unitFile, 'utf8'), /someone-elses-hub/);
    // Ours is replaced without --force (install again after an upgrade), and removed by uninstall.
    assert.equal(cli(['service', 'install', '--user', '--unit-dir', unitDir, '--data-dir', join(root, 'mine')]).status, 0);
    const uninstall = cli(['service', 'uninstall', '--user'], { MQTTKIT_SYSTEMD_DIR: unitDir });
    assert.equal(uninstall.status, 0, uninstall.stderr);
    assert.equal(existsSync(unitFile), false);
    assert.ok(existsSync(join(root, 'mine')), 'the data dir stays');
  });

  it('refuses a system service without an account to run as, or as root', () => {
    const none = cli(['service', 'install', '--system', '--data-dir', '/var/lib/mqttkit-x', '--dry-run'], { SUDO_USER: '' });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /--run-as <user>/);
    const rooted = cli(['service', 'install', '--system', '--run-as', 'root', '--dry-run']);
    assert.equal(rooted.status, 2);
    assert.match(rooted.stderr, /must not run as root/);
    const spaced = cli(['service', 'install', '--user', '--unit-dir', unitDir, '--data-dir', join(root, 'hub data')]);
    assert.equal(spaced.status, 2);
    assert.ok(spaced.stderr.includes(`${join(root, 'hub data')} has a space`), spaced.stderr);
  });

  it('refuses --run-as an account of uid 0 (`--run-as 0` is root by another name)', () => {
    const zero = cli(['service', 'install', '--system', '--run-as', '0', '--data-dir', '/var/lib/mqttkit-zero', '--dry-run']);
    assert.equal(zero.status, 2, zero.stdout);
    assert.match(zero.stderr, /uid is 0, so the hub would run as root; name an ordinary account \(e\.g\. useradd --system mqttkit\)/);
    assert.doesNotMatch(zero.stdout, /^User=/m, 'no unit printed');
  });

  it('refuses a start option with a line break (it would add lines such as User=root to the unit), and writes nothing', () => {
    const injected = cli([
      'service',
      'install',
      '--user',
      '--unit-dir',
      unitDir,
      '--data-dir',
      join(root, 'inject'),
      '--',
      '--bridge-name',
      'Living\nExecStartPre=/bin/touch /tmp/mqttkit-pwned\n#',
    ]);
    assert.equal(injected.status, 2, injected.stdout);
    assert.match(injected.stderr, /has a line break or control character in it, which would add lines to the unit: give it without/);
    assert.equal(existsSync(unitFile), false, 'no unit written');
  });

  it('keeps secrets out of the unit: a URL with a password or --mqtt-password after -- is refused, naming the 0600 environment file the unit reads', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--database-url', 'postgres://mqttkit:s3cret-pw@db.local:5432/mqttkit'], /--database-url is a URL with a password.*MQTTKIT_DATABASE_URL=/],
      [['--mqtt-url=mqtts://hub:s3cret-pw@broker.local:8883'], /--mqtt-url is a URL with a password.*MQTTKIT_MQTT_URL=/],
      [['--mqtt-username', 'hub', '--mqtt-password', 's3cret-pw'], /--mqtt-password after -- .*MQTTKIT_MQTT_PASSWORD=/],
    ];
    const dir = join(root, 'secret');
    for (const [options, message] of cases) {
      const refused = cli(['service', 'install', '--user', '--unit-dir', unitDir, '--data-dir', dir, '--', ...options]);
      assert.equal(refused.status, 2, `${options.join(' ')}: ${refused.stdout}`);
      assert.match(refused.stderr, message);
      assert.ok(refused.stderr.includes(`${dir}/service.env`) || refused.stderr.includes('service.env'), refused.stderr);
      assert.match(refused.stderr, /mode 0600/);
      assert.ok(!refused.stderr.includes('s3cret-pw'), 'the password is not printed');
      assert.equal(existsSync(unitFile), false, 'no unit written');
    }
    // A URL without a password is fine; the unit reads the (optional) environment file in the data dir.
    const plain = cli(['service', 'install', '--user', '--unit-dir', unitDir, '--data-dir', dir, '--', '--mqtt-url', 'mqtt://broker.local:1883']);
    assert.equal(plain.status, 0, plain.stderr);
    assert.deepEqual(settings(readFileSync(unitFile, 'utf8'), 'EnvironmentFile'), [`-${join(dir, 'service.env')}`]);
    rmSync(unitFile);
  });
});
