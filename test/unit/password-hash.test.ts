/**
 * The scrypt thread ends when no login or registration has come for a while (issue 13: its ~10 MB stayed
 * with a connected fleet for good) and starts again for the next one, with the same answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashPassword, hashThread, verifyPassword } from '../../src/security/password-hash.js';
import { eventually } from '../helpers/hub-process.js';

describe('password hashing thread', () => {
  it('ends after a quiet spell and starts again for the next password, answering as before', async () => {
    hashThread.idleMs = 200;
    const stored = await hashPassword('correct horse');
    assert.ok(hashThread.running, 'the thread runs after a hash');
    await eventually(() => !hashThread.running, 5000, 'the idle thread to end');
    assert.equal(await verifyPassword('correct horse', stored), true, 'a new thread verifies the old hash');
    assert.equal(await verifyPassword('wrong horse', stored), false);
    await eventually(() => !hashThread.running, 5000, 'the thread to end again');
  });

  it('never hands a password to a thread on its way out: jobs that arrive as it ends are all answered', async () => {
    hashThread.idleMs = 1;
    const stored = await hashPassword('p');
    for (let round = 0; round < 20; round++) {
      await new Promise((resolve) => setTimeout(resolve, round % 3));
      assert.equal(await verifyPassword('p', stored), true);
    }
  });
});
