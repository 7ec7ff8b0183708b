/** Which folders the OTA upload cleanup may remove: only `<data dir>/uploads/<folder>`, never a user's path. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { jobUploadFolders, removeJobUploads, sweepUploads, uploadFolderOf, uploadsRoot } from '../../src/ota/uploads.js';

describe('OTA upload folders', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mqttkit-uploads-'));
  const root = uploadsRoot(dataDir);
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('finds the folder of a file under uploads/, and nothing for any other path', () => {
    assert.equal(uploadFolderOf(root, join(root, 'abc', 'file.bin')), join(root, 'abc'));
    assert.equal(uploadFolderOf(root, join(root, 'abc', 'deeper', 'file.bin')), join(root, 'abc'));
    assert.equal(uploadFolderOf(root, `${root}/abc/../../outside/file.bin`), undefined, 'dot segments are resolved first');
    assert.equal(uploadFolderOf(root, join(root, 'file.bin')), undefined, 'a file directly in uploads/ has no folder to remove');
    assert.equal(uploadFolderOf(root, root), undefined);
    assert.equal(uploadFolderOf(root, `${root}-other/abc/file.bin`), undefined, 'a sibling that shares the prefix');
    assert.equal(uploadFolderOf(root, '/home/someone/main.py'), undefined);
    assert.equal(uploadFolderOf(root, 'main.py'), undefined, 'a relative path is the current directory, not uploads/');
    assert.deepEqual(jobUploadFolders(root, { file: '/home/someone/main.py', as: 'main.py' }), [], "a CLI job's own file");
    assert.deepEqual(jobUploadFolders(root, { manifest: join(root, 'x', 'manifest.json') }), [join(root, 'x')]);
  });

  it("removes an ended job's folder unless another unfinished job still needs it", () => {
    const folder = join(root, 'job-a');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'file.bin'), 'x');
    assert.deepEqual(removeJobUploads(root, { image: join(folder, 'file.bin') }, new Set([folder])), []);
    assert.ok(existsSync(folder));
    assert.deepEqual(removeJobUploads(root, { image: join(folder, 'file.bin') }, new Set()), [folder]);
    assert.equal(existsSync(folder), false);
  });

  it('at start removes every folder not kept, a symlink as a link (never what it points to), and leaves files alone', () => {
    const keep = join(root, 'queued');
    const stray = join(root, 'stray');
    const outside = mkdtempSync(join(tmpdir(), 'mqttkit-outside-'));
    writeFileSync(join(outside, 'precious.txt'), 'mine');
    for (const f of [keep, stray]) mkdirSync(f, { recursive: true });
    symlinkSync(outside, join(root, 'link'));
    writeFileSync(join(root, 'note.txt'), 'not a folder');
    const removed = sweepUploads(root, new Set([keep]));
    assert.deepEqual(removed.sort(), [join(root, 'link'), stray].sort());
    assert.ok(existsSync(keep));
    assert.ok(existsSync(join(outside, 'precious.txt')), 'the link target is untouched');
    assert.ok(existsSync(join(root, 'note.txt')));
    assert.deepEqual(sweepUploads(join(dataDir, 'missing'), new Set()), [], 'no uploads yet: nothing to do');
    rmSync(outside, { recursive: true, force: true });
  });
});
