/**
 * `GET /metrics`: the hub's figures in Prometheus's text format, beside the JSON `GET /api/metrics`,
 * behind the same login rule (a token for the scraper, the session for a browser; nothing without).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync, connectDevice } from '../helpers/mqtt-device.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reader of the text exposition format (0.0.4): every line is a `# HELP`, a `# TYPE` or a
 * sample of a family whose TYPE came first; anything else fails the test with the line.
 */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  assert.ok(text.endsWith('\n'), 'the text ends with a newline');
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line);
    if (help) continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      assert.ok(!types.has(type[1]!), `one TYPE line for ${type[1]}`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    assert.ok(s, `not a line of the Prometheus text format: ${JSON.stringify(line)}`);
    assert.ok(types.has(s[1]!), `${s[1]} has a TYPE line before its samples`);
    const labels = Object.fromEntries([...(s[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    samples.push({ name: s[1]!, labels, value: Number(s[3]) });
  }
  return { types, samples };
}

describe('GET /metrics (Prometheus text format)', { timeout: 60_000 }, () => {
  let hub: RunningHub;
  let base: string;
  let token = '';

  before(async () => {
    hub = await startHub();
    base = `http://127.0.0.1:${hub.info.httpPort}`;
    const created = await cliAsync(['token', 'create', 'prometheus', '--json', '--data-dir', hub.dataDir]);
    token = (JSON.parse(created.stdout) as { token: string }).token;
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('answers 401 without a session or token, as GET /api/metrics does', async () => {
    for (const path of ['/metrics', '/%6detrics', '/METRICS']) {
      const response = await fetch(`${base}${path}`);
      const json = await fetch(`${base}/api/metrics`);
      assert.equal(json.status, 401);
      assert.ok([401, 404].includes(response.status), `${path}: ${response.status}`);
      assert.doesNotMatch(await response.text(), /mqttkit_/, `${path} tells a stranger nothing`);
    }
    assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer mk_not-a-token' } })).status, 401);
  });

  it('gives a scraper with an API token the same figures as the JSON, in the text format', async () => {
    const device = await connectDevice(hub.info.mqtt.address, 'prom-lamp');
    device.on('error', () => {});
    await device.publishAsync('HomeKit/prom-lamp/Switch/On', '1', { qos: 1 });
    const headers = { authorization: `Bearer ${token}` };
    const response = await fetch(`${base}/metrics`, { headers });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const { types, samples } = parsePrometheus(await response.text());
    const json = (await (await fetch(`${base}/api/metrics`, { headers })).json()) as { devices: number; messages: { received: number } };
    const one = (name: string, labels: Record<string, string> = {}) => {
      const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      assert.equal(found.length, 1, `one sample ${name} ${JSON.stringify(labels)}`);
      return found[0]!.value;
    };
    assert.equal(types.get('mqttkit_devices'), 'gauge');
    assert.equal(one('mqttkit_devices'), json.devices);
    assert.ok(one('mqttkit_devices') >= 1);
    assert.equal(types.get('mqttkit_messages_total'), 'counter');
    assert.ok(one('mqttkit_messages_total', { outcome: 'received' }) >= 1);
    assert.ok(one('mqttkit_messages_total', { outcome: 'received' }) <= json.messages.received);
    assert.ok(one('mqttkit_resident_memory_bytes') > 1_000_000);
    assert.ok(one('mqttkit_uptime_seconds') >= 0);
    assert.ok(one('mqttkit_cpu_seconds_total', { mode: 'user' }) > 0);
    for (const kind of ['unhandled_rejection', 'uncaught_exception', 'listener_error']) assert.equal(one('mqttkit_faults_total', { kind }), 0);
    device.end(true);
  });
});
