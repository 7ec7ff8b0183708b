/**
 * The Matter bridge's own state: the pairing (random, never a forbidden passcode, [M-6]), the endpoint
 * number table (stable, never reused, [M-5]) and the files in `<data>/matter` (owner-only, a damaged one
 * refused by name, [M-7]).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EndpointNumbers, FIRST_ENDPOINT, parseTable } from '../../src/matter/endpoint-numbers.js';
import { checkPairing, generatePairing } from '../../src/matter/pairing.js';
import { checkMatterStorage, loadPairing, NODE_DIR, PAIRING_FILE, prepareMatterDir } from '../../src/matter/state-files.js';

const dirs: string[] = [];
const temp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-matter-unit-'));
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('Matter pairing [M-6]', () => {
  it('never generates a forbidden passcode, even from a source that proposes them first', () => {
    const proposals = [11111111 - 1, 12345678 - 1, 87654321 - 1, 1234]; // random(n) + 1 = the passcode
    let i = 0;
    const pairing = generatePairing((max) => (max === 4096 ? 7 : (proposals[i++] ?? 5)));
    assert.deepEqual(pairing, { passcode: 1235, discriminator: 7 });
  });

  it('refuses forbidden and out-of-range passcodes and discriminators', () => {
    for (const passcode of [0, 11111111, 22222222, 99999999, 12345678, 87654321, 100000000, 1.5]) {
      assert.equal(checkPairing({ passcode, discriminator: 1 }).ok, false, String(passcode));
    }
    assert.equal(checkPairing({ passcode: 20202021, discriminator: 4096 }).ok, false);
    assert.equal(checkPairing({ passcode: 20202021, discriminator: 3840 }).ok, true);
  });

  it('is made once per data dir (0600) and read back the same', () => {
    const dir = prepareMatterDir(temp());
    const first = loadPairing(dir);
    assert.equal(statSync(join(dir, PAIRING_FILE)).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(loadPairing(dir), first);
  });

  it("keeps the bridge's UniqueID with the passcode: a file from before it gets one once, and it moves with the file", () => {
    const dir = prepareMatterDir(temp());
    writeFileSync(join(dir, PAIRING_FILE), '{"passcode": 20202021, "discriminator": 3840}', { mode: 0o600 });
    const first = loadPairing(dir);
    assert.match(first.uniqueId ?? '', /^[0-9a-f]{32}$/);
    assert.deepEqual(loadPairing(dir), first, 'chosen once and kept');
    const moved = prepareMatterDir(temp());
    writeFileSync(join(moved, PAIRING_FILE), readFileSync(join(dir, PAIRING_FILE)));
    assert.equal(loadPairing(moved).uniqueId, first.uniqueId, 'the same in another data dir');
    writeFileSync(join(dir, PAIRING_FILE), '{"passcode": 20202021, "discriminator": 3840, "uniqueId": "../x"}');
    assert.throws(() => loadPairing(dir), /uniqueId/);
  });

  it('refuses a damaged pairing file by name and leaves it as it is', () => {
    const dir = prepareMatterDir(temp());
    writeFileSync(join(dir, PAIRING_FILE), '{"passcode": 12345678, "discriminator": 1}');
    assert.throws(
      () => loadPairing(dir),
      (e: Error) => e.message.includes(join(dir, PAIRING_FILE)) && /damaged/.test(e.message),
    );
    writeFileSync(join(dir, PAIRING_FILE), '{"passco');
    assert.throws(() => loadPairing(dir), /not JSON/);
    assert.equal(readFileSync(join(dir, PAIRING_FILE), 'utf8'), '{"passco');
  });
});

describe('Matter storage [M-7]', () => {
  it('refuses a damaged matter.js value by name (matter.js alone would read it as missing and start afresh)', () => {
    const dir = prepareMatterDir(temp());
    mkdirSync(join(dir, NODE_DIR));
    writeFileSync(join(dir, NODE_DIR, 'fabrics.fabrics'), '[]');
    writeFileSync(join(dir, NODE_DIR, 'matter.lock'), '');
    checkMatterStorage(dir);
    writeFileSync(join(dir, NODE_DIR, 'root.operationalCredentials.nocs'), '[{"nod');
    assert.throws(
      () => checkMatterStorage(dir),
      (e: Error) => e.message.includes('root.operationalCredentials.nocs') && /move the matter folder aside/.test(e.message),
    );
  });

  it('makes every file in the folder owner-only, whatever the umask made them', () => {
    const data = temp();
    const dir = prepareMatterDir(data);
    mkdirSync(join(dir, NODE_DIR), { mode: 0o755 });
    writeFileSync(join(dir, NODE_DIR, 'x'), '1', { mode: 0o644 });
    prepareMatterDir(data);
    assert.equal(statSync(join(dir, NODE_DIR)).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, NODE_DIR, 'x')).mode & 0o777, 0o600);
  });
});

describe('Matter endpoint numbers [M-5]', () => {
  it('gives each key a number once, saves before answering, and never reuses a retired one', async () => {
    const saved: string[] = [];
    const table = parseTable(undefined);
    assert.ok(table.ok);
    const numbers = new EndpointNumbers(table.value, async (text) => {
      saved.push(text);
    });
    const [a, b, a2] = [await numbers.numberFor('dev-a'), await numbers.numberFor('dev-a/Switch/0'), await numbers.numberFor('dev-a')];
    assert.deepEqual([a, b, a2], [FIRST_ENDPOINT, FIRST_ENDPOINT + 1, FIRST_ENDPOINT]);
    assert.equal(saved.length, 2);
    await numbers.release('dev-a');
    assert.equal(await numbers.numberFor('dev-a'), FIRST_ENDPOINT + 2);
    // What was saved last is read back the same after a restart.
    const again = parseTable(saved.at(-1));
    assert.ok(again.ok);
    assert.deepEqual(again.value.numbers, { 'dev-a': FIRST_ENDPOINT + 2 });
  });

  it('gives one number when asked for the same key at once', async () => {
    const table = parseTable(undefined);
    assert.ok(table.ok);
    const numbers = new EndpointNumbers(table.value, () => new Promise((r) => setTimeout(r, 5)));
    const got = await Promise.all([numbers.numberFor('x'), numbers.numberFor('x')]);
    assert.equal(got[0], got[1]);
  });

  it('refuses a damaged table (renumbering would scramble every controller)', () => {
    for (const bad of [
      '{',
      '[]',
      '{"next":1,"numbers":{}}',
      '{"next":5,"numbers":{"a":3,"b":3}}',
      '{"next":5,"numbers":{"a":9}}',
      '{"next":5,"numbers":{"a":"3"}}',
    ]) {
      assert.equal(parseTable(bad).ok, false, bad);
    }
    assert.equal(parseTable('{"next":5,"numbers":{"a":3,"b":4}}').ok, true);
  });
});
