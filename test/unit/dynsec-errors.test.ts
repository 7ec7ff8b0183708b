/** Mosquitto's dynamic-security client: its errors reach the hub log, so they never carry a password. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DynsecClient } from '../../src/broker/mosquitto/dynsec.js';

describe('dynamic-security client errors', () => {
  it('name an unreachable broker without the password its URL carries', async () => {
    await assert.rejects(DynsecClient.connect('mqtt://operator:s3cret-in-url@127.0.0.1:1', 'mqttkit-hub', 'the-login'), (error: Error) => {
      assert.match(error.message, /cannot reach the broker at mqtt:\/\/operator:\*\*\*@127\.0\.0\.1:1/);
      assert.doesNotMatch(error.message, /s3cret-in-url|the-login/);
      return true;
    });
  });
});
