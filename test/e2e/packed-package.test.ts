/**
 * Issue 13, "The npm package as packed cannot start": what `npm pack` ships, installed where npm puts
 * it, starts: `mqttkit start` serves the dashboard, its vendored uPlot and the device library (mip
 * package), `mqttkit simulate` runs a device against it and `mqttkit conformance` checks that device.
 *
 * How it is installed: `npm install --offline <tarball>` cannot run here (the npm cache holds the
 * lockfile's tarballs but not the registry's package lists a lockfile-less install needs, and
 * better-sqlite3 would compile from source for minutes). So the test does what npm does with a
 * tarball: unpacks it to node_modules/mqttkit, links node_modules/.bin/mqttkit to its `bin`, and
 * provides exactly the package's declared `dependencies` (linked from this checkout's node_modules,
 * nothing else: an import of a devDependency or an undeclared package fails as it would for a user).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { rawRequest } from '../helpers/raw-http.js';

const execFileAsync = promisify(execFile);

/** This checkout (dist/test/e2e → the root). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Manifest {
  version: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
}

/** Packs this checkout (already built by `npm test`: no scripts, so the running tests' dist is not rebuilt) and installs the tarball in `dir`. */
function packAndInstall(dir: string): { app: string; bin: string; manifest: Manifest } {
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' })) as Array<{
    filename: string;
  }>;
  const tarball = join(dir, packed[0]!.filename);
  const app = join(dir, 'app');
  const installed = join(app, 'node_modules', 'mqttkit');
  mkdirSync(installed, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '--strip-components=1', '-C', installed]);
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Manifest;
  for (const name of Object.keys(manifest.dependencies)) {
    const target = join(ROOT, 'node_modules', name);
    assert.ok(existsSync(target), `dependency ${name} is installed in this checkout`);
    const link = join(app, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(target, link, 'dir');
  }
  const bin = join(app, 'node_modules', '.bin', 'mqttkit');
  mkdirSync(dirname(bin), { recursive: true });
  symlinkSync(join('..', 'mqttkit', manifest.bin.mqttkit!), bin);
  return { app, bin, manifest };
}

describe('the npm package as packed', { timeout: 120_000 }, () => {
  let dir: string;
  let app: string;
  let bin: string;
  let manifest: Manifest;
  let hub: RunningHub | undefined;
  let port: number;
  const get = (path: string) => rawRequest(port, { path });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mqttkit-pack-'));
    ({ app, bin, manifest } = packAndInstall(dir));
    hub = await startHub({ bin, cwd: app });
    port = hub.info.httpPort!;
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('starts, and says its version (`--version` and `version`), and its banner names it with the data dir', () => {
    for (const args of [['--version'], ['version']]) {
      const version = execFileSync(process.execPath, [bin, ...args], { cwd: app, encoding: 'utf8' }).trim();
      assert.equal(version, manifest.version, args.join(' '));
    }
    assert.ok(hub!.output().includes(`mqttkit ${manifest.version}, data dir ${hub!.dataDir}`), hub!.output());
  });

  it('ships no container files (Dockerfile, compose.yaml, .dockerignore are for building from the source)', () => {
    const installed = join(app, 'node_modules', 'mqttkit');
    for (const file of ['Dockerfile', 'compose.yaml', '.dockerignore']) assert.equal(existsSync(join(installed, file)), false, `${file} is not in the package`);
    assert.ok(existsSync(join(installed, 'docs', 'service.md')), 'the service docs are');
  });

  it('`mqttkit service install` from the installed package names its node and its own bin/mqttkit.js', () => {
    const unit = execFileSync(process.execPath, [bin, 'service', 'install', '--user', '--dry-run', '--data-dir', join(dir, 'svc-data')], {
      cwd: app,
      encoding: 'utf8',
    });
    const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
    assert.ok(exec.startsWith(`${realpathSync(process.execPath)} `), exec);
    assert.ok(exec.includes(` ${realpathSync(join(app, 'node_modules', 'mqttkit', 'bin', 'mqttkit.js'))} start --data-dir ${join(dir, 'svc-data')}`), exec);
  });

  it('serves HTTPS with --http-tls auto, and its CLI reaches that hub (the declared dependencies suffice)', async () => {
    const secure = await startHub({ bin, cwd: app, args: ['--http-tls', 'auto'] });
    try {
      const cert = readFileSync(join(secure.dataDir, 'https', 'cert.pem'), 'utf8');
      const status = await new Promise<number>((resolve, reject) =>
        httpsGet({ host: '127.0.0.1', port: secure.info.httpPort, path: '/api/health', ca: cert }, (res) => resolve(res.statusCode ?? 0)).on('error', reject),
      );
      assert.equal(status, 200);
      const asked = await execFileAsync(process.execPath, [bin, 'query', 'memory', '--below', '50000', '--json', '--data-dir', secure.dataDir], { cwd: app });
      assert.equal((JSON.parse(asked.stdout) as { kind: string }).kind, 'memory');
    } finally {
      await secure.stop('SIGKILL');
      removeDataDir(secure.dataDir);
    }
  });

  it('serves the dashboard and every file its index loads, uPlot included', async () => {
    const index = await get('/');
    assert.equal(index.status, 200, index.body);
    const assets = [...index.body.matchAll(/(?:src|href)="(\/[^"]*)"/g)].map((m) => m[1]!);
    assert.ok(assets.includes('/vendor/uplot/uPlot.iife.min.js'), `the index loads uPlot: ${assets.join(', ')}`);
    for (const asset of assets) {
      const response = await get(asset);
      assert.equal(response.status, 200, `${asset}: ${response.body.slice(0, 200)}`);
    }
    const uplot = await fetch(`http://127.0.0.1:${port}/vendor/uplot/uPlot.iife.min.js`);
    assert.equal(await uplot.text(), readFileSync(join(ROOT, 'node_modules/uplot/dist/uPlot.iife.min.js'), 'utf8'));
  });

  it('serves the device library as a mip package, file for file', async () => {
    const response = await get('/device/package.json');
    assert.equal(response.status, 200, response.body);
    const pkg = JSON.parse(response.body) as { urls: Array<[string, string]>; version: string };
    assert.equal(pkg.version, manifest.version);
    assert.ok(pkg.urls.length > 0, 'the package lists files');
    for (const [dest, url] of pkg.urls) {
      const file = await fetch(new URL(url, `http://127.0.0.1:${port}/device/`));
      assert.equal(file.status, 200, `${dest} (${url})`);
      assert.deepEqual(Buffer.from(await file.arrayBuffer()), readFileSync(join(ROOT, 'device/micropython', dest)), `${dest} byte for byte`);
    }
  });

  it('runs `mqttkit simulate` against the hub, and `mqttkit conformance` checks the simulated device', async () => {
    const sim = spawn(process.execPath, [bin, 'simulate', '--devices', '1', '--kinds', 'switch', '--prefix', 'packed', '--data-dir', hub!.dataDir], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    sim.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    sim.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => sim.once('exit', resolve));
    try {
      await eventually(() => output.includes('running 1 devices'), 30_000, `the simulated device to connect:\n${output}`);
      // Exits non-zero (and rejects, with its output) unless the device passes.
      const check = await execFileAsync(
        process.execPath,
        [bin, 'conformance', 'packed-switch-1', '--only', 'P-0', '--data-dir', hub!.dataDir, '--timeout', '20', '--sleep-wait', '0'],
        { cwd: app, timeout: 60_000 },
      );
      assert.match(check.stdout, /P-0/);
      sim.kill('SIGINT');
      assert.equal(await exited, 0, output);
    } finally {
      sim.kill('SIGKILL');
    }
  });
});
