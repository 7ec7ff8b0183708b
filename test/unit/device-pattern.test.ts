/**
 * A rollout's device pattern (`all`, `relay-*`, `lamp-?`): one definition (src/core/device-pattern.ts)
 * for the CLI and the dashboard, which the hub serves at /shared/device-pattern.js.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { matchDevices } from '../../src/core/device-pattern.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const IDS = ['relay-1', 'relay-2', 'relay-10', 'lamp-a', 'lamp-ab', 'x.y', 'xzy', 'a+b'];

describe('device pattern', () => {
  it("'all' names every device, in the order given (a copy: the caller's list is left alone)", () => {
    const all = matchDevices('all', IDS);
    assert.deepEqual(all, IDS);
    assert.notEqual(all, IDS);
  });
  it('* stands for any run of characters, ? for one, the rest matches the whole id', () => {
    assert.deepEqual(matchDevices('relay-*', IDS), ['relay-1', 'relay-2', 'relay-10']);
    assert.deepEqual(matchDevices('relay-?', IDS), ['relay-1', 'relay-2']);
    assert.deepEqual(matchDevices('lamp-a', IDS), ['lamp-a'], 'no prefix match');
    assert.deepEqual(matchDevices('*a*', IDS), ['relay-1', 'relay-2', 'relay-10', 'lamp-a', 'lamp-ab', 'a+b']);
    assert.deepEqual(matchDevices('nothing-*', IDS), []);
  });
  it('reads regular-expression characters as themselves', () => {
    assert.deepEqual(matchDevices('x.y', IDS), ['x.y'], 'a dot is a dot');
    assert.deepEqual(matchDevices('a+b', IDS), ['a+b']);
    assert.deepEqual(matchDevices('(relay)|.*', IDS), []);
    assert.deepEqual(matchDevices('[lr]*', IDS), []);
  });
  it('is written once: the CLI and the Updates page import it, neither has its own', () => {
    const cli = readFileSync(`${ROOT}src/cli/ota-command.ts`, 'utf8');
    const page = readFileSync(`${ROOT}src/web/public/pages/ota.js`, 'utf8');
    assert.match(cli, /import \{ matchDevices \} from '\.\.\/core\/device-pattern\.js'/);
    assert.match(page, /import \{ matchDevices \} from '\/shared\/device-pattern\.js'/);
    for (const source of [cli, page]) {
      assert.doesNotMatch(source, /function matchDevices/);
      assert.doesNotMatch(source, /\.replace\(\/\\\*\/g/, 'no second glob-to-regex conversion');
    }
  });
});
