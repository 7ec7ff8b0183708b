/**
 * Issue 16, ESP-NOW gateway hardening: what the gateway does when the air loses, repeats or floods, and
 * when a key holder sends what the protocol does not allow (docs/protocol.md [E-4]...[E-12]). The real
 * Gateway (with its real, unconnected Device) and Peripheral run in CPython with the PC port; a scripted
 * radio stands in for the air (test/device/espnow_gateway_unit.py, one process for all cases).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SCRIPT = fileURLToPath(new URL('../../../test/device/espnow_gateway_unit.py', import.meta.url));

type Published = Array<[string, string]>;
type Case = Record<string, unknown> & { error?: string };
interface BodyCase {
  malformed: number;
  waiting: number;
  published: Published;
  replies: number;
  exception_file: boolean;
  same_txid_then: Published;
}

describe('ESP-NOW gateway: lost, repeated and flooding frames, and bad bodies (CPython, scripted radio)', () => {
  let result: Record<string, Case>;
  const get = <T>(name: string): T => {
    const c = result[name]!;
    assert.equal(c.error, undefined, c.error);
    return c as T;
  };

  before(async () => {
    const run = await promisify(execFile)('python3', [SCRIPT], { timeout: 60_000 });
    result = JSON.parse(run.stdout) as Record<string, Case>;
  });

  it('[E-7] a PAIR replayed while the window is open gets the same PAIR_OK and no new key; another PAIR is refused and counted; the first key works', () => {
    const r = get<{
      first_key_kept: boolean;
      key_after_replays: boolean;
      replay_answer_same: boolean;
      other_answered: boolean;
      wake_answered: boolean;
      stats: Record<string, number>;
      window_open: boolean;
    }>('pair_replay');
    assert.equal(r.first_key_kept, true, 'the real pairing gives both sides one key');
    assert.equal(r.key_after_replays, true, 'the replay did not replace the key the peripheral holds');
    assert.equal(r.replay_answer_same, true, 'the replay is answered with the same PAIR_OK (the same gateway nonce)');
    assert.equal(r.other_answered, false, 'a different PAIR after the pairing is not answered');
    assert.equal(r.stats.pair_refused, 1);
    assert.equal(r.wake_answered, true, "the peripheral's WAKE under the first key is answered");
    assert.equal(r.window_open, false, 'and the window closed at it');
  });

  it("[E-7] the gateway's first PAIR_OK lost on the air: the peripheral's retry is the same PAIR and pairs with the same key", () => {
    const r = get<{ lost: number; paired: boolean; same_key: boolean; pair_refused: number }>('pair_retry');
    assert.equal(r.lost, 1, 'the first answer was lost');
    assert.equal(r.pair_refused, 0, 'the retry is not taken for a second pairing');
    assert.equal(r.paired, true, 'the peripheral paired at its retry');
    assert.equal(r.same_key, true, 'both sides hold one key');
  });

  it('[E-12] a lost REPLY: the identical retried DATA gets the same REPLY, nothing is published again, the write waits until confirmed, the state ends sleeping', () => {
    const r = get<{
      first_reply: unknown;
      retry_reply: unknown;
      retry_reply_txid: number;
      republished_on_retry: Published;
      waiting_before_confirmation: number;
      waiting_after_confirmation: number;
      state: string[];
      switch: string[];
      stats: Record<string, number>;
    }>('lost_reply');
    assert.deepEqual(r.first_reply, { 'Switch/On': '1' });
    assert.deepEqual(r.retry_reply, { 'Switch/On': '1' }, 'the retry is answered with the write');
    assert.equal(r.retry_reply_txid, 101);
    assert.deepEqual(r.republished_on_retry, [], 'the retry publishes nothing');
    assert.equal(r.waiting_before_confirmation, 1, 'the write waits until the peripheral confirms it');
    assert.equal(r.waiting_after_confirmation, 0);
    assert.deepEqual(r.switch, ['1'], 'only the confirmation is relayed, not the value from before the write');
    assert.equal(r.state.at(-1), 'sleeping 60');
    assert.equal(r.stats.repeated, 1);
    assert.equal(r.stats.reused_txid, 0);
  });

  it('[E-12] a REPLY that never arrives: the peripheral is shown sleeping when its session ends, and its write goes again at its next wake', () => {
    const r = get<{ state: string[]; waiting: number; next_reply: unknown }>('reply_never_arrives');
    assert.deepEqual(r.state, ['online', 'sleeping 60']);
    assert.equal(r.waiting, 1);
    assert.deepEqual(r.next_reply, { 'Switch/On': '1' });
  });

  it('[E-5] a lost TIME: the identical retried WAKE is answered again; an older WAKE nonce is a replay', () => {
    assert.deepEqual(get('wake_retry'), { retry_answered: 1, older_answered: 0, reused_txid: 1 });
  });

  it('[E-12] the exchanges kept for retries are bounded: twelve peripherals awake at once, eight kept; one dropped early is shown sleeping, its write still waits', () => {
    assert.deepEqual(get('bounded'), { kept: 8, first_state: 'sleeping 60', waiting: 12 });
  });

  it('[E-4] a radio that never runs dry: poll() returns after a bounded number of frames, and the Device steps between', () => {
    const r = get<{ one_poll: number; frames_before_each_step: number[] }>('flood');
    assert.ok(r.one_poll > 0 && r.one_poll <= 64, `one poll() handled ${r.one_poll} frames`);
    assert.equal(r.frames_before_each_step.length, 5);
    for (const [i, n] of r.frames_before_each_step.entries()) assert.ok(n <= (i + 1) * 64, `${n} frames before step ${i + 1}`);
  });

  it('[E-8] a DATA with a bad "$sleep", a value that will not encode, or a list: refused as malformed before anything is done', () => {
    const r = get<Record<string, BodyCase>>('bad_body');
    for (const [name, c] of Object.entries(r)) {
      assert.equal(c.malformed, 1, name);
      assert.equal(c.waiting, 1, `${name}: the write still waits`);
      assert.deepEqual(c.published, [], `${name}: nothing published (not even $state online)`);
      assert.equal(c.replies, 0, name);
      assert.equal(c.exception_file, false, `${name}: no last_exception.txt written to flash`);
      assert.deepEqual(
        c.same_txid_then.map(([t]) => t.split('/').slice(2).join('/')),
        ['$state', 'TemperatureSensor/CurrentTemperature'],
        `${name}: the txid did not move on, a good DATA with it is taken`,
      );
    }
  });

  it('[E-11] the gateway drops and counts keys outside the hub grammar (a /set, a $-level, a NUL, index 0, $state, $error); the rest is relayed', () => {
    const r = get<{ published: Published; bad_key: number; replies: number }>('bad_keys');
    assert.deepEqual(r.published, [
      ['HomeKit/soil-1/$state', 'online'],
      ['HomeKit/soil-1/$name', 'Soil 1'],
      ['HomeKit/soil-1/Switch/2/On', '1'],
      ['HomeKit/soil-1/TemperatureSensor/CurrentTemperature', '21.5'],
    ]);
    assert.equal(r.bad_key, 7);
    assert.equal(r.replies, 1);
  });

  it('[E-11] a peripheral refuses such a key at publish(), naming it and the grammar', () => {
    const r = get<Record<string, string | string[]>>('peripheral_keys');
    for (const name of ['set_level', 'nul', 'dollar', 'index_zero']) {
      assert.match(r[name] as string, /is not a characteristic path: Service\[\/index 1-99\]\/Characteristic/, name);
    }
    assert.match(r.set_level as string, /Switch\/1\/set/);
    assert.equal(r.good, 'accepted');
    assert.deepEqual(r.values, ['Switch/2/On']);
  });
});
