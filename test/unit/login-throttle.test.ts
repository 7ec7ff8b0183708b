/** The pieces that keep a device with the right password from being locked out (issue 10, finding 5). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KnownPasswords } from '../../src/security/known-passwords.js';
import { LoginThrottle } from '../../src/security/login-throttle.js';
import { hashPassword, verifyPassword } from '../../src/security/password-hash.js';

const FAST = { baseDelayMs: 40, maxDelayMs: 40, forgetAfterMs: 60_000 };
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('login throttle (by address)', () => {
  it('runs two honest attempts from one address at once, and queues a third', async () => {
    const throttle = new LoginThrottle(FAST);
    const order: string[] = [];
    const attempt = (name: string) =>
      throttle.run('10.0.0.1', async () => {
        order.push(`${name} start`);
        await tick();
        order.push(`${name} end`);
        return true;
      });
    await Promise.all([attempt('a'), attempt('b'), attempt('c')]);
    assert.deepEqual(order.slice(0, 2), ['a start', 'b start']);
    assert.ok(order.indexOf('c start') > order.indexOf('a end'), 'c waited for a free slot');
  });

  it('holds a failing address for its penalty, one attempt at a time, while other addresses go ahead', async () => {
    const throttle = new LoginThrottle(FAST);
    const order: string[] = [];
    const attempt = (address: string, name: string, ok: boolean) =>
      throttle
        .run(address, async () => {
          order.push(name);
          return ok;
        })
        .then(() => order.push(`${name} done`));
    await attempt('10.0.0.9', 'guess 1', false);
    await Promise.all([attempt('10.0.0.9', 'guess 2', false), attempt('10.0.0.9', 'guess 3', false), attempt('10.0.0.2', 'device', true)]);
    assert.ok(order.indexOf('device done') < order.indexOf('guess 2 done'), `the device did not wait for the guesser's penalty: ${order.join(', ')}`);
    assert.ok(order.indexOf('guess 3') > order.indexOf('guess 2 done'), `the guesser's attempts ran one at a time: ${order.join(', ')}`);
  });

  it('gives suspect addresses one check at a time between them', async () => {
    const throttle = new LoginThrottle(FAST);
    for (const address of ['10.0.0.7', '10.0.0.8']) await throttle.run(address, async () => false);
    let running = 0;
    let most = 0;
    const attempt = (address: string) =>
      throttle.run(address, async () => {
        most = Math.max(most, ++running);
        await tick();
        running--;
        return true;
      });
    await Promise.all([attempt('10.0.0.7'), attempt('10.0.0.8')]);
    assert.equal(most, 1);
  });

  it('refuses at once past 64 attempts waiting from one address', async () => {
    const throttle = new LoginThrottle(FAST);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const held = Array.from({ length: 2 + 64 }, () => throttle.run('10.0.0.3', async () => (await gate, true)));
    assert.equal(await throttle.run('10.0.0.3', async () => true), false, 'busy');
    release();
    assert.ok((await Promise.all(held)).every(Boolean));
  });
});

describe('known passwords', () => {
  it('recognises the password that verified last, for that stored hash only', () => {
    const known = new KnownPasswords();
    known.remember('dev', 'scrypt$hash-1', 'right-password');
    assert.equal(known.matches('dev', 'scrypt$hash-1', 'right-password'), true);
    assert.equal(known.matches('dev', 'scrypt$hash-1', 'wrong-password'), false);
    assert.equal(known.matches('other', 'scrypt$hash-1', 'right-password'), false);
    assert.equal(known.matches('dev', 'scrypt$hash-2', 'right-password'), false, 'a reset or new registration voids it');
    assert.equal(known.matches('dev', 'scrypt$hash-1', 'right-password'), false, 'and it stays void');
  });

  it('stays bounded', () => {
    const known = new KnownPasswords(2);
    for (const name of ['a', 'b', 'c']) known.remember(name, 's', 'p');
    assert.equal(known.matches('a', 's', 'p'), false, 'the oldest went');
    assert.equal(known.matches('c', 's', 'p'), true);
  });
});

describe('password hashing queue', () => {
  it('checks a login before the new passwords queued ahead of it', async () => {
    const stored = await hashPassword('device-password');
    const done: string[] = [];
    const registrations = Array.from({ length: 6 }, (_, i) => hashPassword(`new-${i}-password`).then(() => done.push(`hash ${i}`)));
    const login = verifyPassword('device-password', stored).then((ok) => done.push(`verify ${ok}`));
    await Promise.all([...registrations, login]);
    assert.ok(done.indexOf('verify true') <= 1, `order: ${done.join(', ')}`);
  });
});
