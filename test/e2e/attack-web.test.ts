/** Attacks on the web API found after issue 10's fixes. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';

describe('attack: web API', { timeout: 60_000 }, () => {
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('a refused OTA sync leaves nothing in uploads/ (a bad path after a good file, again and again)', async () => {
    hub = await startHub();
    const token = (JSON.parse(cli(['token', 'create', 'attack', '--json', '--data-dir', hub.dataDir]).stdout) as { token: string }).token;
    const device = await connectDevice(hub.info.mqtt.address, 'lamp');
    device.on('error', () => {});
    await device.publishAsync('HomeKit/lamp/Lightbulb/On', 'true', { qos: 1 });
    const api = (path: string, body: unknown) =>
      fetch(`http://127.0.0.1:${hub!.info.httpPort}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${hub!.info.httpPort}/api/devices/lamp`, { headers: { authorization: `Bearer ${token}` } })).ok,
      10_000,
      'device lamp',
    );

    const content = Buffer.from('print("hello")\n').toString('base64');
    for (const bad of ['../boot.py', '/main.py', 'a//b.py', '$firmware']) {
      const response = await api('/api/ota/sync', {
        device: 'lamp',
        files: [
          { path: 'main.py', content },
          { path: bad, content },
        ],
      });
      assert.equal(response.status, 400, `sync with ${bad}`);
    }
    const uploads = join(hub.dataDir, 'uploads');
    const left = existsSync(uploads) ? readdirSync(uploads) : [];
    assert.deepEqual(left, [], `refused syncs left ${left.length} upload folder(s) behind: ${left.join(', ')}`);
    device.end(true);
  });
});
