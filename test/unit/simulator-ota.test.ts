/** The simulated OTA side: its bootloader [O-6] (a new image boots unconfirmed, keepversion keeps it, a reset before that or an image that does not start goes back), discard and partitions. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OtaSide } from '../../device/simulator/ota-side.js';
import { FACTORY_FIRMWARE, Partitions, readImage } from '../../device/simulator/partitions.js';

const image = (version: string, boots = true) => Buffer.from(JSON.stringify({ version, boots }));

describe('simulated A/B partitions', () => {
  it('boots a written image from the spare slot and keeps it after keepversion, across resets', () => {
    const p = new Partitions();
    assert.equal(p.running, 'ota_0');
    assert.equal(p.write(image('2.0.0')), 'ota_1');
    assert.equal(p.version, FACTORY_FIRMWARE, 'nothing changes before the reset');
    assert.match(p.boot(), /booted the new firmware 2\.0\.0 on ota_1, not yet confirmed/);
    assert.equal(p.keep(), 'firmware on ota_1 kept');
    p.boot();
    assert.deepEqual([p.running, p.version], ['ota_1', '2.0.0']);
  });

  it('rolls back an image that was never confirmed at the next reset', () => {
    const p = new Partitions();
    p.write(image('2.0.0'));
    p.boot();
    assert.match(p.boot(), /the firmware on ota_1 was never confirmed: rolled back to 1\.27\.0-sim on ota_0/);
    assert.deepEqual([p.running, p.version], ['ota_0', FACTORY_FIRMWARE]);
  });

  it('falls back at once from an image that does not start', () => {
    const p = new Partitions();
    p.write(image('3.0.0', false));
    assert.match(p.boot(), /the firmware on ota_1 did not start: rolled back to .* on ota_0/);
    assert.equal(p.running, 'ota_0');
  });

  it('names any other image by its hash, and it boots', () => {
    const other = readImage(Buffer.from([0xe9, 0x03, 0x02, 0x20]));
    assert.match(other.version, /^image-[0-9a-f]{8}$/);
    assert.equal(other.boots, true);
  });
});

describe('simulated OTA side', () => {
  it('discard names staged files as they are on disk, and leaves live files alone [O-13]', () => {
    const ota = new OtaSide();
    ota.files.set('main.py', Buffer.from('old'));
    ota.staged.set('main.py', Buffer.from('new'));
    assert.deepEqual(ota.command('discard'), { discarded: ['main.py.new'] });
    assert.deepEqual(ota.command('discard'), { discarded: [] });
    assert.equal(ota.files.get('main.py')?.toString(), 'old');
  });

  it('partitions: two slots, the running one named [O-21]; keepversion names it [O-20]', () => {
    const ota = new OtaSide();
    assert.deepEqual(ota.command('partitions'), { count: 2, running: 'ota_0' });
    assert.equal(ota.command('keepversion'), 'firmware on ota_0 kept');
  });
});
