/**
 * [S-2] The dashboard switches the registration policy of a running hub. A switch made while a new
 * device's password hashes (a scrypt run) holds for that device too: an admin closing registration
 * against a flood of new ids must not see the ids in flight let in as active devices.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger } from '../../src/log/logger.js';
import { Registration } from '../../src/security/registration.js';
import { AccountStore } from '../../src/store/account-store.js';
import { openSqliteEngine } from '../../src/store/engine/open.js';

describe('registration policy switched during a registration', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-policy-'));
  const db = openSqliteEngine(join(dir, 'mqttkit.db'));
  const accounts = new AccountStore(db);
  after(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('closed while the password hashed: refused, and no account is made', async () => {
    const registration = new Registration(accounts, 'open', createLogger('silent', false));
    const pending = registration.authenticate('in-flight-1', 'a-long-device-password', '127.0.0.1');
    registration.setPolicy('closed');
    const outcome = await pending;
    assert.equal(outcome.ok, false);
    assert.equal(await accounts.get('in-flight-1'), undefined);
  });

  it('switched to approve while the password hashed: the device waits for approval', async () => {
    const registration = new Registration(accounts, 'open', createLogger('silent', false));
    const pending = registration.authenticate('in-flight-2', 'a-long-device-password', '127.0.0.1');
    registration.setPolicy('approve');
    const outcome = await pending;
    assert.equal(outcome.ok, false);
    assert.equal((await accounts.get('in-flight-2'))?.status, 'pending');
  });

  it('opened while the password hashed under approve: it still waits for approval (the stricter policy holds)', async () => {
    const registration = new Registration(accounts, 'approve', createLogger('silent', false));
    const pending = registration.authenticate('in-flight-3', 'a-long-device-password', '127.0.0.1');
    registration.setPolicy('open');
    const outcome = await pending;
    assert.equal(outcome.ok, false);
    assert.equal((await accounts.get('in-flight-3'))?.status, 'pending');
  });
});
