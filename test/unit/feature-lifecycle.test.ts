/**
 * The feature lifecycle (src/core/feature.ts, src/hub/feature.ts): what a feature takes through its
 * scope (bus listeners, MQTT subscriptions, timers, things to close) is gone after it stops, and a
 * feature that cannot start is named. A fake feature on the real bus and the real scope.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { HubLink } from '../../src/broker/hub-link.js';
import type { DeviceRecord } from '../../src/core/device.js';
import { EventBus } from '../../src/core/events.js';
import type { InboundMessage } from '../../src/core/ingest.js';
import { type Feature, FeatureRunner, type FeatureScope } from '../../src/hub/feature.js';

const log = pino({ level: 'silent' });

/** A link that keeps its handlers and delivers to them: enough to see whether a handler still acts. */
class LoopLink implements HubLink {
  readonly address = 'mqtt://loop';
  readonly handlers: Array<(m: InboundMessage) => void> = [];
  async subscribe(_filter: string, handler: (m: InboundMessage) => void): Promise<void> {
    this.handlers.push(handler);
  }
  async publish(topic: string, payload: string | Buffer): Promise<void> {
    for (const h of this.handlers) h({ topic, payload: Buffer.from(payload), live: true });
  }
  async close(): Promise<void> {}
}

class Counting implements Feature {
  readonly name = 'counting';
  events = 0;
  messages = 0;
  ticks = 0;
  closed = 0;
  start(scope: FeatureScope): Promise<void> {
    scope.on('device:added', () => this.events++);
    scope.every(5, () => this.ticks++);
    scope.after(5, () => this.ticks++);
    scope.defer(() => void this.closed++);
    return scope.subscribe('a/#', () => this.messages++);
  }
}

const device = { id: 'd1' } as unknown as DeviceRecord;

describe('feature lifecycle', () => {
  it("removes a feature's bus listeners, MQTT handlers and timers when the hub stops it", async () => {
    const bus = new EventBus();
    const link = new LoopLink();
    const runner = new FeatureRunner(bus, log);
    const feature = new Counting();
    await runner.start(feature, link);
    bus.emit('device:added', device);
    await link.publish('a/b', 'x');
    assert.equal(feature.events, 1);
    assert.equal(feature.messages, 1);
    await new Promise<void>((resolve) => {
      const wait = setInterval(() => feature.ticks >= 2 && (clearInterval(wait), resolve()), 1);
    });

    await runner.stop();
    assert.equal(feature.closed, 1, 'what it deferred ran once');
    const ticks = feature.ticks;
    bus.emit('device:added', device);
    await link.publish('a/b', 'x');
    // Timers cleared: an interval of 5 ms would have ticked within 50 ms (a bound that only needs the timer to be gone).
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(feature.events, 1, 'no bus listener is left');
    assert.equal(feature.messages, 1, 'no MQTT handler acts any more');
    assert.equal(feature.ticks, ticks, 'no timer is left');
  });

  it('names the feature that cannot start, and stops those that started', async () => {
    const bus = new EventBus();
    const runner = new FeatureRunner(bus, log);
    const first = new Counting();
    await runner.start(first, new LoopLink());
    const broken: Feature = {
      name: 'broken',
      start: (scope) => {
        scope.on('device:added', () => assert.fail('a failed feature must not keep its listeners'));
        throw new Error('port in use');
      },
    };
    await assert.rejects(runner.start(broken), /the broken feature could not start: port in use/);
    await runner.stop();
    bus.emit('device:added', device);
    assert.equal(first.events, 0);
    assert.equal(first.closed, 1);
  });
});
