/** Settings that keep the hub's heap small (issue 13: a 500-device load stayed above 150 MB of RSS without them). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generate, writeToStream } from 'mqtt-packet';

describe('memory settings', () => {
  it('the embedded broker writes packet ids without the 65,536-buffer cache mqtt-packet would fill (~7 MB of heap)', async () => {
    await import('../../src/broker/embedded-broker.js');
    assert.equal(writeToStream.cacheNumbers, false);
    // Packets still carry their ids: a QoS 1 publish with id 0x1234.
    const bytes = generate({ cmd: 'publish', topic: 't', payload: Buffer.from('v'), qos: 1, messageId: 0x1234, retain: false, dup: false });
    assert.deepEqual([...bytes.subarray(5, 7)], [0x12, 0x34]);
  });

  it('once the hub is loaded, stack traces are formatted by Node, not by the source-map-support HAP-NodeJS registers (it keeps every map it reads)', async () => {
    await import('hap-nodejs');
    assert.equal(typeof Error.prepareStackTrace, 'function', 'HAP-NodeJS installed its hook (else this test proves nothing)');
    await import('../../src/hub/hub.js');
    assert.equal(Error.prepareStackTrace, undefined);
    assert.match(new Error('x').stack ?? '', /memory-settings\.test\.js/);
  });
});
