/**
 * Issue 10, finding 3 and the inputs around it: small bodies per route (a login is refused before a
 * 1 MB body has even arrived), an OTA file-size cap for API uploads and CLI files with a message that
 * names the option, bounded ids, queries and fields whose errors never echo the input, and at most 20
 * live event streams per user that end with the session or token.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, cliAsync, connectDevice } from '../helpers/mqtt-device.js';
import { json, rawRequest } from '../helpers/raw-http.js';

const DEVICE = 'limit-lamp';
const KIB = 1024;
const MIB = 1024 * KIB;

/** Sends the headers and the first bytes of a body that announces `length` bytes; resolves with the answer that comes without the rest. */
function partialPost(port: number, path: string, length: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('error', () => {}); // the hub may close the connection after answering
    socket.on('data', (chunk) => {
      data += chunk.toString();
      const match = /^HTTP\/1\.1 (\d+)[\s\S]*?\r\n\r\n([\s\S]*\})/.exec(data);
      if (match) {
        socket.destroy();
        resolve({ status: Number(match[1]), body: match[2]! });
      }
    });
    socket.setTimeout(15_000, () => {
      socket.destroy();
      reject(new Error(`no answer to a ${length}-byte ${path} body before it was complete`));
    });
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n{"username":"admin","password":"${'x'.repeat(1000)}`,
    );
  });
}

interface Stream {
  status: number;
  body: string;
  ended: Promise<void>;
  close(): void;
}

/** Opens a live event stream on its own connection and keeps it open. */
function openStream(port: number, headers: Record<string, string>): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/api/events', headers, agent: false }, (res: IncomingMessage) => {
      let body = '';
      const ended = new Promise<void>((done) => res.once('close', done));
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('error', () => {});
      resolve({
        status: res.statusCode ?? 0,
        get body() {
          return body;
        },
        ended,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

describe('web limits', { timeout: 180_000 }, () => {
  let hub: RunningHub;
  let port: number;
  let token = '';
  let cookie = '';
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-limits-'));
  const auth = () => ({ authorization: `Bearer ${token}` });
  const post = (path: string, value: unknown) =>
    rawRequest(port, { method: 'POST', path, ...json(value), headers: { 'content-type': 'application/json', ...auth() } });
  const error = (body: string) => (JSON.parse(body) as { error: string }).error;
  const base64 = (bytes: number) => Buffer.alloc(bytes, 7).toString('base64');

  before(async () => {
    hub = await startHub({ env: { MQTTKIT_OTA_MAX_FILE_SIZE: '64k' } });
    port = hub.info.httpPort!;
    const device = await connectDevice(hub.info.mqtt.address, DEVICE);
    device.on('error', () => {});
    await device.publishAsync(`HomeKit/${DEVICE}/Lightbulb/On`, '1', { qos: 1 });
    token = (JSON.parse((await cliAsync(['token', 'create', 'limits', '--json', '--data-dir', hub.dataDir])).stdout) as { token: string }).token;
    const setup = await rawRequest(port, {
      method: 'POST',
      path: '/api/setup',
      ...json({ username: 'admin', password: 'correct horse battery' }),
      headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` },
    });
    cookie = String(setup.headers['set-cookie']).split(';')[0]!;
    await eventually(async () => (await rawRequest(port, { path: `/api/devices/${DEVICE}`, headers: auth() })).status === 200, 10_000, 'the device');
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a 1 MB login with 413 before the body has arrived', async () => {
    const answer = await partialPost(port, '/api/login', MIB);
    assert.equal(answer.status, 413);
    assert.match(error(answer.body), /^the request body \(1 MiB\) is over the limit of 4 KiB for POST \/api\/login$/);
    const setupBody = await partialPost(port, '/api/setup', 23 * MIB);
    assert.equal(setupBody.status, 413);
  });

  it('keeps every other body small (16 KiB), with the route in the message', async () => {
    const big = await post(`/api/devices/${DEVICE}/set`, { service: 'Lightbulb', characteristic: 'On', value: 'x'.repeat(20 * KIB) });
    assert.equal(big.status, 413);
    assert.match(error(big.body), /over the limit of 16 KiB for POST \/api\/devices\/:id\/set/);
    const command = await post(`/api/devices/${DEVICE}/command`, { command: 'x'.repeat(20 * KIB) });
    assert.equal(command.status, 413);
  });

  it('refuses an OTA upload over --ota-max-file-size with 413 and a message naming the file and the option', async () => {
    const push = (bytes: number) => post('/api/ota/push', { device: DEVICE, file: { path: 'main.py', content: base64(bytes) }, reboot: false });
    const huge = await push(100 * KIB);
    assert.equal(huge.status, 413);
    assert.match(error(huge.body), /for POST \/api\/ota\/push: files up to the OTA limit of 64 KiB, base64-encoded \(--ota-max-file-size\)/);
    const over = await push(65 * KIB); // its body fits, the decoded file does not
    assert.equal(over.status, 413);
    assert.equal(error(over.body), 'main.py is 65 KiB, over the OTA limit of 64 KiB (--ota-max-file-size)');
    const firmware = await post('/api/ota/firmware', { device: DEVICE, image: base64(65 * KIB) });
    assert.equal(firmware.status, 413);
    assert.equal(error(firmware.body), 'the firmware image is 65 KiB, over the OTA limit of 64 KiB (--ota-max-file-size)');
    const sync = await post('/api/ota/sync', {
      device: DEVICE,
      files: [
        { path: 'a.py', content: base64(33 * KIB) },
        { path: 'b.py', content: base64(33 * KIB) },
      ],
    });
    assert.equal(sync.status, 413);
    assert.match(error(sync.body), /the files are 66 KiB together, over the OTA limit of 64 KiB for one sync/);
    const notBase64 = await post('/api/ota/push', { device: DEVICE, file: { path: 'main.py', content: 'not base64!' } });
    assert.equal(notBase64.status, 400);
    assert.match(error(notBase64.body), /file\.content: not base64/);
    const jobs = JSON.parse((await rawRequest(port, { path: '/api/ota/jobs', headers: auth() })).body) as unknown[];
    assert.equal(jobs.length, 0, 'nothing over the cap was queued');
    const fits = await push(60 * KIB);
    assert.equal(fits.status, 200, fits.body);
  });

  it('bounds ids, queries and fields, and never echoes a long input back', async () => {
    const long = 'L'.repeat(5000);
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['GET', `/api/devices/${'a'.repeat(65)}`, undefined, /not a device id/],
      ['GET', `/api/devices/${DEVICE}/logs?after=-1`, undefined, /after: /],
      ['GET', `/api/devices/${DEVICE}/logs?after=abc`, undefined, /after: /],
      ['GET', `/api/devices/${DEVICE}/logs?after=1e400`, undefined, /after: /],
      ['GET', `/api/history?device=${DEVICE}&service=${long}&characteristic=On`, undefined, /service: at most 64 characters/],
      ['GET', `/api/history?device=${DEVICE}&service=Lightbulb&characteristic=On&from=1e300`, undefined, /from: /],
      ['GET', `/api/history?device=${DEVICE}&service=Lightbulb&characteristic=On&index=100000`, undefined, /index: /],
      ['GET', `/api/history?device=${long}&service=Lightbulb&characteristic=On`, undefined, /device: not a device id/],
      ['POST', `/api/devices/${DEVICE}/set`, { service: 'Lightbulb', characteristic: long, value: true }, /characteristic: at most 64 characters/],
      ['POST', `/api/devices/${DEVICE}/set`, { service: long, characteristic: 'On', value: true }, /service: at most 64 characters/],
      ['POST', '/api/ota/push', { device: long, file: { path: 'main.py', content: '' } }, /device: not a device id/],
      ['POST', `/api/registration/${'r'.repeat(65)}/reset`, {}, /id: not a device id/],
    ];
    for (const [method, path, body, pattern] of cases) {
      const response = method === 'GET' ? await rawRequest(port, { path, headers: auth() }) : await post(path, body);
      assert.equal(response.status, 400, `${method} ${path.slice(0, 80)}: ${response.body.slice(0, 200)}`);
      assert.match(error(response.body), pattern);
      assert.ok(response.body.length < 400 && !response.body.includes('LLLLLLLLLL'), `${path.slice(0, 80)} answers briefly: ${response.body.slice(0, 200)}`);
    }
  });

  it('holds at most 20 live event streams per user, and ends them with the token or session', async () => {
    const streams: Stream[] = [];
    for (let i = 0; i < 20; i++) streams.push(await openStream(port, auth()));
    assert.deepEqual(
      streams.map((s) => s.status),
      Array(20).fill(200),
    );
    const extra = await openStream(port, auth());
    assert.equal(extra.status, 429);
    await extra.ended;
    assert.match(error(extra.body), /limits has 20 live event streams open, the most one user may hold: close other dashboard tabs or scripts/);
    const browser = await openStream(port, { cookie });
    assert.equal(browser.status, 200, 'another user (a dashboard session) has its own 20');
    streams.pop()!.close();
    const again = await eventually(
      async () => {
        const s = await openStream(port, auth());
        if (s.status === 200) return s;
        s.close();
        return undefined;
      },
      10_000,
      'a free stream after one closed',
    );
    streams.push(again);

    assert.equal((await cliAsync(['token', 'remove', 'limits', '--data-dir', hub.dataDir])).status, 0);
    await Promise.all(streams.map((s) => s.ended)); // the revoked token's streams end (the node:test timeout is the bound)
    const out = await rawRequest(port, {
      method: 'POST',
      path: '/api/logout',
      ...json({}),
      headers: { 'content-type': 'application/json', cookie, origin: `http://127.0.0.1:${port}` },
    });
    assert.equal(out.status, 200);
    await browser.ended;
  });

  it('the CLI refuses an OTA file over the cap before reading it, naming the file and the option', async () => {
    const big = join(dir, 'firmware.bin');
    writeFileSync(big, '');
    truncateSync(big, Math.round(20.1 * MIB)); // sparse: the size without the bytes
    const manifest = join(dir, 'manifest.txt');
    writeFileSync(manifest, `${big} main.py\n`);
    const args = ['--data-dir', hub.dataDir, '--no-wait'];
    // This hub runs with a 64 KiB cap: the CLI takes the lower of its own (16 MiB by default) and the hub's.
    const push = cli(['ota', 'push', DEVICE, big, ...args], { MQTTKIT_OTA_MAX_FILE_SIZE: '' });
    assert.equal(push.status, 2, push.stderr);
    assert.match(push.stderr, /firmware\.bin is 20\.1 MiB, over the OTA limit of 64 KiB \(--ota-max-file-size\): the running hub's limit/);
    const firmware = cli(['ota', 'firmware', DEVICE, big, ...args]);
    assert.equal(firmware.status, 2);
    assert.match(firmware.stderr, /firmware\.bin is 20\.1 MiB, over the OTA limit of 64 KiB/);
    const sync = cli(['ota', 'sync', DEVICE, manifest, ...args]);
    assert.equal(sync.status, 2);
    assert.match(sync.stderr, /manifest\.txt: .*firmware\.bin is 20\.1 MiB, over the OTA limit of 64 KiB/);
    // A larger cap on the command line does not get past the running hub's.
    const raised = cli(['ota', 'firmware', DEVICE, big, '--ota-max-file-size', '32M', ...args]);
    assert.equal(raised.status, 2);
    assert.match(raised.stderr, /over the OTA limit of 64 KiB/);
    // A smaller one, from the environment or the command line, is the CLI's own limit.
    const small = join(dir, 'small.bin');
    writeFileSync(small, Buffer.alloc(10 * 1024));
    const env = cli(['ota', 'firmware', DEVICE, small, ...args], { MQTTKIT_OTA_MAX_FILE_SIZE: '4k' });
    assert.equal(env.status, 2);
    assert.match(env.stderr, /small\.bin is 10 KiB, over the OTA limit of 4 KiB \(--ota-max-file-size\)/);
    const badSize = cli(['ota', 'push', DEVICE, big, '--ota-max-file-size', '1k', ...args]);
    assert.equal(badSize.status, 2);
    assert.match(badSize.stderr, /--ota-max-file-size: '1k' is not valid; expected a size from 4KiB to 256MiB/);
  });
});
