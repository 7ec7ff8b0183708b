/** State files are replaced whole or not at all: after a failed write or a kill -9 mid-write, the old content is intact. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs, { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { removeStaleTempFiles, writeFileAtomic } from '../../src/store/atomic-file.js';
import { readBrokerCredentials, writeBrokerCredentials } from '../../src/store/broker-credentials.js';

const dirs: string[] = [];
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mqttkit-atomic-'));
  dirs.push(d);
  return d;
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('atomic state files', () => {
  it('writes the new content owner-only and leaves no temp file behind', () => {
    const d = dir();
    const file = join(d, 'state.json');
    writeFileSync(file, 'old', { mode: 0o644 });
    writeFileAtomic(file, '{"new":true}');
    assert.equal(readFileSync(file, 'utf8'), '{"new":true}');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(d), ['state.json']);
  });

  it('keeps the old content when the write fails midway (disk full after half the bytes)', () => {
    const d = dir();
    const file = join(d, 'state.json');
    writeFileSync(file, '{"old":true}');
    const real = fs.writeSync;
    let calls = 0;
    // Simulated ENOSPC: the first write call stores half the bytes, the next one fails.
    fs.writeSync = ((fd: number, buffer: Uint8Array, offset: number, length: number) => {
      if (calls++ > 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return real(fd, buffer, offset, Math.ceil(length / 2));
    }) as typeof fs.writeSync;
    syncBuiltinESMExports();
    try {
      assert.throws(() => writeFileAtomic(file, JSON.stringify({ new: 'x'.repeat(10_000) })), /ENOSPC/);
    } finally {
      fs.writeSync = real;
      syncBuiltinESMExports();
    }
    assert.equal(calls, 2, 'the simulated failure happened midway');
    assert.equal(readFileSync(file, 'utf8'), '{"old":true}');
    assert.deepEqual(readdirSync(d), ['state.json'], 'the half-written temp file is removed');
  });

  it('clears temp files an interrupted write left behind, but not one a write may still be using', () => {
    const d = dir();
    writeFileSync(join(d, '.tmp-hub.json.123.abcd'), '{"half":');
    writeFileSync(join(d, '.tmp-hub.json.456.ef01'), '{"in progress":');
    writeFileSync(join(d, 'hub.json'), '{}');
    const twoHoursAgo = new Date(Date.now() - 7_200_000);
    utimesSync(join(d, '.tmp-hub.json.123.abcd'), twoHoursAgo, twoHoursAgo);
    assert.deepEqual(removeStaleTempFiles(d), ['.tmp-hub.json.123.abcd']);
    assert.deepEqual(readdirSync(d).sort(), ['.tmp-hub.json.456.ef01', 'hub.json']);
  });

  it('never leaves a partial broker-credentials.json when the writer is killed with SIGKILL mid-write', { timeout: 120_000 }, async () => {
    const d = dir();
    const module = fileURLToPath(new URL('../../src/store/broker-credentials.js', import.meta.url));
    // Writes of this size leave a partial file in most rounds when written in place (measured: ~3 in 4).
    const passwords = ['a'.repeat(100_000), 'b'.repeat(100_000)];
    writeBrokerCredentials(d, { username: 'hub', password: passwords[0]! });
    const script = `
      const { writeBrokerCredentials } = await import(${JSON.stringify(module)});
      const dir = ${JSON.stringify(d)};
      const passwords = ['a'.repeat(100_000), 'b'.repeat(100_000)];
      process.stdout.write('ready\\n');
      for (let i = 1; ; i++) writeBrokerCredentials(dir, { username: 'hub', password: passwords[i % 2] });
    `;
    for (let round = 0; round < 20; round++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 20 + ((round * 37) % 60)));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      const saved = readBrokerCredentials(d);
      assert.ok(saved, `round ${round}: broker-credentials.json is damaged after a kill -9 (${statSync(join(d, 'broker-credentials.json')).size} bytes)`);
      assert.ok(passwords.includes(saved.password), `round ${round}: a whole password, old or new`);
    }
  });
});
