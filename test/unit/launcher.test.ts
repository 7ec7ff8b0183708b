/** The launcher's memory settings (issue 13: ~40 MB of RSS under load) apply however the hub is started. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BIN, launcherSettings } from '../helpers/hub-process.js';

describe('launcher', () => {
  it('asks node for a small young generation and glibc for two malloc arenas and a fixed mmap threshold, and `npm start` passes the same', () => {
    const { env, flags } = launcherSettings();
    assert.ok(flags.includes('--max-semi-space-size=8'), `the launcher's flags: ${flags.join(' ')}`);
    assert.ok(flags.includes('--optimize-for-size'), `the launcher's flags: ${flags.join(' ')}`);
    assert.deepEqual(env, { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' });
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
    assert.equal(pkg.scripts.start, `MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 node ${flags.join(' ')} bin/mqttkit.js start`);
  });

  it('the container image starts node with the same flags and environment as the launcher', () => {
    const { env, flags } = launcherSettings();
    const dockerfile = readFileSync(new URL('../../../Dockerfile', import.meta.url), 'utf8');
    const entrypoint = dockerfile.match(/^ENTRYPOINT (\[.*\])$/m);
    assert.ok(entrypoint, 'the Dockerfile has an exec-form ENTRYPOINT');
    assert.deepEqual(JSON.parse(entrypoint[1]!), ['node', ...flags, '/app/bin/mqttkit.js']);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    for (const [name, value] of Object.entries(env))
      assert.match(runtime, new RegExp(`^\\s*(ENV )?${name}=${value}\\b`, 'm'), `${name}=${value} in the runtime stage`);
  });

  it('runs as a program (the way npx and an installed bin start it), its flags in effect', () => {
    const out = execFileSync(BIN, ['--version'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    assert.match(out.trim(), /^\d+\.\d+\.\d+/);
    // Short-lived garbage, as a busy hub makes: the young generation grows to its cap.
    const expression =
      "let k = []; for (let i = 0; i < 2e6; i++) { k.push({ i, s: 'x' + i }); if (k.length > 20000) k = []; } require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size";
    const capped = Number(execFileSync(process.execPath, [...launcherSettings().flags, '-p', expression], { encoding: 'utf8' }));
    const usual = Number(execFileSync(process.execPath, ['-p', expression], { encoding: 'utf8' }));
    assert.ok(capped <= 6 * 1048576 && capped < usual, `new space ${capped} bytes with the flags, ${usual} without`);
  });
});
