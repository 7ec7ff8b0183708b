/** The activity log stays readable when a device flaps (found by the hostile review: 1,800 lines in 10 s). */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { DeviceRecord } from '../../src/core/device.js';
import { EventBus } from '../../src/core/events.js';
import { logActivity } from '../../src/hub/activity-log.js';
import { PerKeyBudget } from '../../src/log/per-key-budget.js';

describe('activity log', () => {
  it('logs at most 10 state changes a minute per device, says when it holds back, and keeps other devices apart', () => {
    const lines: Array<{ device: string; msg: string }> = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString())), done()) });
    const bus = new EventBus();
    const off = logActivity(bus, pino({ level: 'info' }, sink));
    const flapper: DeviceRecord = { id: 'flapper', meta: {}, state: 'online', lastSeen: 0, createdAt: 0, services: [] };
    const calm: DeviceRecord = { ...flapper, id: 'calm' };
    for (let i = 0; i < 500; i++) {
      flapper.state = i % 2 === 0 ? 'offline' : 'online';
      bus.emit('device:state', flapper, i % 2 === 0 ? 'online' : 'offline');
    }
    calm.state = 'offline';
    bus.emit('device:state', calm, 'online');
    off();
    const flapperLines = lines.filter((l) => l.device === 'flapper');
    assert.equal(flapperLines.length, 10);
    assert.match(flapperLines.at(-1)!.msg, /changes state too often/);
    assert.deepEqual(
      lines.filter((l) => l.device === 'calm').map((l) => l.msg),
      ['device is offline'],
    );
  });

  it('gives each key a fresh budget once its window has passed', () => {
    let now = 0;
    const budget = new PerKeyBudget(2, 1000, 100, () => now);
    assert.deepEqual([budget.take('a'), budget.take('a'), budget.take('a')], ['log', 'log-last', 'skip']);
    now = 1000;
    assert.equal(budget.take('a'), 'log');
  });
});
