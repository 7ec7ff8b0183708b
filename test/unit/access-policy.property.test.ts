/**
 * Property tests of the topic spaces (docs/security.md [S-3]): whatever two device ids are, nothing one
 * may publish reaches a subscription the other may make, and no device reaches another's OTA trigger or
 * commands. Ids include the adversarial ones (`OTA` vs `HomeKit`, `stat`, `tele`, `cmnd`, any case).
 * Delivery is judged by a plain MQTT matcher written here, not by the policy's own `filterCovers`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { deviceFieldTopic, setTopic } from '../../src/core/topic.js';
import { commandTopic, pendingTopic, triggerTopic } from '../../src/ota/protocol.js';
import { devicePublishSpace, deviceSubscribeSpace, mayPublish, maySubscribe } from '../../src/security/access-policy.js';

/** MQTT 3.1.1 topic matching [MQTT-4.7]: `+` one level (empty included), `#` the rest and the parent. */
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false; // [MQTT-4.7.2-1]
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

const ADVERSARIAL = ['OTA', 'ota', 'Ota', 'HomeKit', 'homekit', 'HOMEKIT', 'stat', 'Stat', 'tele', 'TELE', 'cmnd', 'Cmnd', 'Log', 'set', 'pending'];
const id = fc.oneof(fc.constantFrom(...ADVERSARIAL), fc.stringMatching(/^[A-Za-z0-9_-]{1,10}$/));
const pair = fc.tuple(id, id).filter(([a, b]) => a !== b);

/** A topic level: the ids themselves, the words of the hub's topics, or anything else a client may send. */
const level = (a: string, b: string) =>
  fc.oneof(fc.constantFrom(a, b, ...ADVERSARIAL, '', '$state', '$error', 'Switch', 'On', '$SYS'), fc.stringMatching(/^[A-Za-z0-9_$ -]{0,6}$/));
const topic = (a: string, b: string) => fc.array(level(a, b), { minLength: 1, maxLength: 6 }).map((levels) => levels.join('/'));
/** A subscription filter: levels, some replaced by `+`, perhaps ending in `#`. */
const filter = (a: string, b: string) =>
  fc
    .tuple(fc.array(fc.oneof(level(a, b), fc.constant('+')), { minLength: 0, maxLength: 5 }), fc.boolean())
    .filter(([levels, hash]) => levels.length > 0 || hash)
    .map(([levels, hash]) => [...levels, ...(hash ? ['#'] : [])].join('/'));

const cases = pair.chain(([a, b]) => fc.tuple(fc.constant(a), fc.constant(b), topic(a, b), filter(a, b)));
/** The cases that broke it once: a device `OTA` publishing the triggers of `HomeKit`, `stat`, `tele`. */
const found: Array<[string, string, string, string]> = [
  ['OTA', 'HomeKit', 'HomeKit/OTA', 'HomeKit/OTA'],
  ['OTA', 'stat', 'stat/OTA', 'stat/OTA'],
  ['OTA', 'tele', 'tele/OTA', 'tele/OTA'],
  ['OTA', 'cmnd', 'HomeKit/OTA/Switch/On', 'cmnd/OTA'],
];

describe('topic spaces (property)', () => {
  it('the policy allows exactly the topics its spaces match', () => {
    fc.assert(
      fc.property(cases, ([a, , t]) => {
        assert.equal(
          mayPublish('device', a, t),
          devicePublishSpace(a).some((space) => matches(space, t)),
          `publish ${t} as ${a}`,
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('nothing device a may publish is delivered to a subscription device b may make', () => {
    fc.assert(
      fc.property(cases, ([a, b, t, f]) => {
        if (!mayPublish('device', a, t)) return;
        for (const space of deviceSubscribeSpace(b)) assert.ok(!matches(space, t), `${a} may publish ${t}, which ${b}'s ${space} receives`);
        if (maySubscribe('device', b, f)) assert.ok(!matches(f, t), `${a} may publish ${t}, which ${b}'s subscription ${f} receives`);
      }),
      { numRuns: 3000, examples: found.map((c) => [c]) },
    );
  });

  it("no device may publish another device's OTA trigger, OTA commands, /set commands or $error", () => {
    const service = fc.constantFrom('Switch', 'Lightbulb', 'OTA', 'stat');
    const characteristic = fc.constantFrom('On', 'Brightness', 'OTA', 'set');
    fc.assert(
      fc.property(pair, service, fc.integer({ min: 0, max: 99 }), characteristic, ([a, b], s, index, c) => {
        const hubTopics = [triggerTopic(b), commandTopic(b), pendingTopic(b), setTopic(b, { service: s, index }, c), deviceFieldTopic(b, 'error')];
        for (const hubTopic of hubTopics) assert.ok(!mayPublish('device', a, hubTopic), `${a} may publish ${hubTopic}, a topic the hub sends to ${b}`);
      }),
      {
        numRuns: 2000,
        examples: [
          [['OTA', 'HomeKit'], 'Switch', 0, 'On'],
          [['OTA', 'stat'], 'Switch', 0, 'On'],
          [['OTA', 'tele'], 'Switch', 0, 'On'],
        ],
      },
    );
  });
});
