/**
 * Issue 17, running in a container (Dockerfile, compose.yaml, docs/service.md). What needs no image is
 * always checked: the Dockerfile's stages and settings, compose.yaml as YAML, that .dockerignore keeps
 * what the build needs, and the HEALTHCHECK's exact command against real hubs (HTTP and HTTPS: exit 0;
 * a stopped hub: not 0). Where podman or docker runs and can get node:20-slim, the image is built and
 * its health check must pass; otherwise that test is skipped saying exactly why.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { requireTool } from '../helpers/system-tools.js';
import { privateCaLeaf } from '../helpers/tls-certs.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (file: string) => readFileSync(`${ROOT}${file}`, 'utf8');

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions: comments dropped, `\` continuations joined, each with its upper-case keyword. */
function instructions(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
      assert.ok(m, `a Dockerfile instruction: ${line}`);
      return { op: m[1]!.toUpperCase(), args: m[2]!.replace(/\s+/g, ' ') };
    });
}

/** The stages: each FROM starts one. */
function stages(list: Instruction[]): Array<{ from: string; name?: string; body: Instruction[] }> {
  const out: Array<{ from: string; name?: string; body: Instruction[] }> = [];
  for (const i of list) {
    if (i.op === 'FROM') {
      const [image, as, name] = i.args.split(' ');
      out.push({ from: image!, ...(as?.toUpperCase() === 'AS' ? { name } : {}), body: [] });
    } else out.at(-1)!.body.push(i);
  }
  return out;
}

/** The HEALTHCHECK's command, exactly as the Dockerfile gives it (exec form: a JSON array). */
function healthCommand(): string[] {
  const runtime = stages(instructions(read('Dockerfile'))).at(-1)!;
  const check = runtime.body.find((i) => i.op === 'HEALTHCHECK');
  assert.ok(check, 'the runtime stage has a HEALTHCHECK');
  const cmd = /\bCMD (\[.*\])$/.exec(check.args)?.[1];
  assert.ok(cmd, `HEALTHCHECK … CMD [ … ] (exec form): ${check.args}`);
  return JSON.parse(cmd) as string[];
}

function runHealthCheck(dataDir: string): { status: number | null; output: string } {
  const [command, ...args] = healthCommand();
  const done = spawnSync(command === 'node' ? process.execPath : command!, args, {
    env: { ...process.env, MQTTKIT_DATA_DIR: dataDir },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: done.status, output: `${done.stdout}${done.stderr}` };
}

describe('the container files', () => {
  it('Dockerfile: a build stage, then node:20-slim with only the packed package, non-root, /data, the ports, a node health check', () => {
    const all = stages(instructions(read('Dockerfile')));
    assert.ok(all.length >= 2, 'multi-stage');
    const build = all[0]!;
    const runtime = all.at(-1)!;
    assert.equal(runtime.from, 'node:20-slim');
    assert.match(build.from, /^node:20/);
    const ops = (stage: typeof runtime, op: string) => stage.body.filter((i) => i.op === op).map((i) => i.args);
    // The build installs dev dependencies, builds, then keeps what `npm pack` ships and the production dependencies.
    const buildRuns = ops(build, 'RUN').join(' && ');
    for (const step of ['npm ci', 'npm run build', 'npm prune --omit=dev', 'npm pack --ignore-scripts'])
      assert.ok(buildRuns.includes(step), `the build runs ${step}`);
    assert.deepEqual(
      ops(runtime, 'COPY').map((a) => a.split(' ')[0]),
      [`--from=${build.name}`],
      'the runtime copies only from the build stage',
    );
    const user = ops(runtime, 'USER').at(-1);
    assert.ok(user && !['root', '0'].includes(user.split(':')[0]!), `runs as a non-root user: ${user}`);
    assert.ok(
      ops(runtime, 'VOLUME').some((v) => /["\s[]?\/data["\]\s]?/.test(v)),
      'a /data volume',
    );
    assert.match(ops(runtime, 'ENV').join(' '), /\bMQTTKIT_DATA_DIR=\/data\b/);
    const exposed = ops(runtime, 'EXPOSE').join(' ').split(' ');
    for (const port of ['1883', '8581', '51826']) assert.ok(exposed.includes(port), `EXPOSE ${port}`);
    const health = healthCommand();
    assert.equal(health[0], 'node', 'the health check runs node (no curl in the slim image)');
    assert.match(health.join(' '), /\/api\/health/);
    const entry = JSON.parse(ops(runtime, 'ENTRYPOINT')[0]!) as string[];
    assert.deepEqual([entry[0], entry.at(-1)], ['node', '/app/bin/mqttkit.js']);
  });

  it('.dockerignore keeps everything the build needs (tsconfig.json "include", package.json "files", the lockfile)', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const tsconfig = JSON.parse(read('tsconfig.json')) as { include: string[] };
    const pkg = JSON.parse(read('package.json')) as { files: string[] };
    const needed = ['package.json', 'package-lock.json', 'tsconfig.json', 'bin', ...tsconfig.include, ...pkg.files.filter((f) => !f.startsWith('dist'))];
    for (const path of needed) {
      const hit = ignored.find((pattern) => path === pattern || path.startsWith(`${pattern}/`));
      assert.equal(hit, undefined, `${path} is needed by the build but .dockerignore drops it (${hit})`);
    }
    assert.ok(
      ignored.includes('node_modules') && ignored.includes('dist') && ignored.includes('data'),
      'no local node_modules, build output or hub state goes in',
    );
  });

  it('compose.yaml: the hub on the host network with a /data volume; mosquitto and postgres profiles wired by --mqtt-url / --database-url', () => {
    const compose = parseYaml(read('compose.yaml')) as {
      services: Record<
        string,
        { network_mode?: string; volumes?: string[]; environment?: Record<string, string>; profiles?: string[]; image?: string; build?: string }
      >;
      volumes: Record<string, unknown>;
    };
    const hub = compose.services.mqttkit;
    assert.ok(hub, 'a mqttkit service');
    assert.equal(hub.build, '.');
    assert.equal(hub.network_mode, 'host', 'host networking (mDNS for HomeKit)');
    assert.ok(
      hub.volumes?.some((v) => v.endsWith(':/data')),
      'the data volume',
    );
    assert.equal(hub.environment?.MQTTKIT_DATA_DIR, '/data');
    // MQTTKIT_MQTT_URL is --mqtt-url, MQTTKIT_DATABASE_URL is --database-url (src/cli/options.ts).
    assert.ok('MQTTKIT_MQTT_URL' in (hub.environment ?? {}) && 'MQTTKIT_DATABASE_URL' in (hub.environment ?? {}));
    assert.deepEqual(compose.services.mosquitto?.profiles, ['mosquitto']);
    assert.deepEqual(compose.services.postgres?.profiles, ['postgres']);
    assert.equal(hub.profiles, undefined, 'the hub runs without a profile');
    for (const service of Object.values(compose.services))
      for (const volume of service.volumes ?? []) {
        const name = volume.split(':')[0]!;
        if (!name.startsWith('.') && !name.startsWith('/')) assert.ok(name in compose.volumes, `volume ${name} is declared`);
      }
  });
});

describe("the image's HEALTHCHECK command, run against real hubs", { timeout: 120_000 }, () => {
  const hubs: RunningHub[] = [];
  after(async () => {
    for (const hub of hubs) {
      await hub.stop('SIGKILL');
      removeDataDir(hub.dataDir);
    }
  });

  it('exits 0 for a running hub (on any --http-port), and not 0 once it is gone (killed: hub.json left behind; stopped: no hub.json)', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const healthy = runHealthCheck(hub.dataDir);
    assert.equal(healthy.status, 0, healthy.output);
    await hub.stop('SIGKILL');
    const killed = runHealthCheck(hub.dataDir);
    assert.notEqual(killed.status, 0, 'a hub that died (its hub.json names a port nobody listens on) is unhealthy');
    const again = await startHub({ dataDir: hub.dataDir });
    hubs.push(again);
    assert.equal(runHealthCheck(hub.dataDir).status, 0);
    assert.equal(await again.stop(), 0);
    const stopped = runHealthCheck(hub.dataDir);
    assert.notEqual(stopped.status, 0, 'a stopped hub is unhealthy');
  });

  it('exits 0 for a hub serving HTTPS (--http-tls auto), verifying its certificate', async () => {
    const hub = await startHub({ args: ['--http-tls', 'auto'] });
    hubs.push(hub);
    const healthy = runHealthCheck(hub.dataDir);
    assert.equal(healthy.status, 0, healthy.output);
    // Another certificate than the one hub.json pins (as a process that took the port would serve): unhealthy.
    const runtime = join(hub.dataDir, 'hub.json');
    const saved = readFileSync(runtime, 'utf8');
    const info = JSON.parse(saved) as { httpTls: { fingerprint256: string } };
    info.httpTls.fingerprint256 = info.httpTls.fingerprint256.replace(/^../, (b) => (b === '00' ? '01' : '00'));
    writeFileSync(runtime, JSON.stringify(info));
    try {
      const wrong = runHealthCheck(hub.dataDir);
      assert.notEqual(wrong.status, 0, `a certificate other than the pinned one is unhealthy: ${wrong.output}`);
    } finally {
      writeFileSync(runtime, saved);
    }
  });

  it("exits 0 for a hub serving the owner's leaf of a private CA (no chain): the pin alone decides", async (t) => {
    const openssl = requireTool(t, 'openssl', ['openssl'], 'apt-get install openssl');
    if (!openssl) return;
    const files = tempDataDir();
    try {
      const leaf = privateCaLeaf(openssl, files);
      const hub = await startHub({ args: ['--http-tls-cert', leaf.certFile, '--http-tls-key', leaf.keyFile] });
      hubs.push(hub);
      const healthy = runHealthCheck(hub.dataDir);
      assert.equal(healthy.status, 0, healthy.output);
    } finally {
      removeDataDir(files);
    }
  });
});

/** A container tool that runs here, or why there is none. */
function containerTool(): { tool: string } | { why: string } {
  const tried: string[] = [];
  for (const tool of ['podman', 'docker']) {
    const info = spawnSync(tool, ['info'], { encoding: 'utf8', timeout: 20_000 });
    if (info.error) {
      tried.push(`${tool} is not installed`);
      continue;
    }
    if (info.status === 0) return { tool };
    tried.push(`${tool} is installed but cannot run containers here (${`${info.stderr}`.trim().split('\n').at(-1)?.slice(0, 200)})`);
  }
  return { why: tried.join('; ') };
}

describe('the image, built and run', { timeout: 900_000 }, () => {
  it('builds, starts, and passes its own health check (where podman or docker can run and get node:20-slim)', async (t: TestContext) => {
    const found = containerTool();
    if ('why' in found) return t.skip(`no container runtime: ${found.why}`);
    const { tool } = found;
    const run = (args: string[], timeout = 600_000) => spawnSync(tool, args, { encoding: 'utf8', timeout, cwd: ROOT });
    if (run(['image', 'inspect', 'node:20-slim']).status !== 0) {
      const pull = run(['pull', 'node:20-slim'], 300_000);
      if (pull.status !== 0)
        return t.skip(`${tool} runs, but the base image node:20-slim cannot be obtained here (${`${pull.stderr}`.trim().split('\n').at(-1)?.slice(0, 200)})`);
    }
    const tag = `mqttkit-test:${process.pid}`;
    const built = run(['build', '-t', tag, '.'], 900_000);
    assert.equal(built.status, 0, `${tool} build:\n${built.stdout.slice(-3000)}\n${built.stderr.slice(-3000)}`);
    const name = `mqttkit-test-${process.pid}`;
    const started = run(['run', '-d', '--name', name, '--health-interval', '2s', '--health-start-period', '60s', tag]);
    assert.equal(started.status, 0, started.stderr);
    try {
      await eventually(
        () => run(['inspect', '--format', '{{.State.Health.Status}}', name]).stdout.trim() === 'healthy',
        120_000,
        `the container to be healthy:\n${run(['logs', name]).stdout}`,
      );
    } finally {
      run(['rm', '-f', name]);
      run(['rmi', '-f', tag]);
    }
  });
});
