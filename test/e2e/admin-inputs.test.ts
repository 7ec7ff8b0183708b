/** Found by the hostile review of issue 14: a race on new dashboard accounts, and an unchecked `logs -n`. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli } from '../helpers/mqtt-device.js';

describe('admin inputs', { timeout: 60_000 }, () => {
  let hub: RunningHub;
  before(async () => {
    hub = await startHub();
  });
  after(async () => {
    await hub?.stop();
    if (hub) removeDataDir(hub.dataDir);
  });

  it('two requests adding the same dashboard account at once: one is made, the other is told it exists (409, not a 500)', async () => {
    // The CLI's local token may manage accounts.
    const local = readFileSync(join(hub.dataDir, 'hub-token'), 'utf8').trim();
    const add = () =>
      fetch(`http://127.0.0.1:${hub.info.httpPort}/api/users`, {
        method: 'POST',
        headers: { authorization: `Bearer ${local}`, 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'twin', password: 'a-long-password-1' }),
      });
    const statuses = (await Promise.all([add(), add()])).map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 409]);
  });

  it('`logs -n` takes a whole number of lines, at least 1, and names a wrong value', () => {
    for (const bad of ['abc', '0', '-3', '2.5']) {
      const result = cli(['logs', 'some-device', '-n', bad, '--data-dir', hub.dataDir]);
      assert.equal(result.status, 2, `-n ${bad}`);
      assert.match(result.stderr, new RegExp(`--lines: '${bad}' is not a whole number of at least 1`));
    }
  });
});
