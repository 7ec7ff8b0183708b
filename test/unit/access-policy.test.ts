import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceAcls } from '../../src/broker/mosquitto/dynsec.js';
import { HUB_ACCOUNT } from '../../src/broker/mosquitto/mosquitto-config.js';
import { accountNameProblem, filterCovers, mayPublish, maySubscribe, mqttAccountNameProblem } from '../../src/security/access-policy.js';
import { failureDelay } from '../../src/security/auth-throttle.js';

describe('access policy', () => {
  it('lets a device publish only in its own spaces', () => {
    for (const topic of ['HomeKit/a/Switch/On', 'HomeKit/a/$state', 'stat/a/OTA', 'tele/a/x/y']) assert.ok(mayPublish('device', 'a', topic), topic);
    for (const topic of ['HomeKit/b/Switch/On', 'HomeKit/ab/Switch/On', 'cmnd/a/OTA', 'a/OTA', 'stat/b/x', '$SYS/x', 'HomeKit']) {
      assert.ok(!mayPublish('device', 'a', topic), topic);
    }
    // [S-3] Never a bare <root>/<id>: that is device <root>'s OTA trigger when <id> is OTA.
    for (const topic of ['HomeKit/a', 'stat/a', 'tele/a']) assert.ok(!mayPublish('device', 'a', topic), topic);
    for (const topic of ['HomeKit/OTA', 'stat/OTA', 'tele/OTA']) assert.ok(!mayPublish('device', 'OTA', topic), topic);
    assert.ok(mayPublish('admin', 'node-red', 'HomeKit/b/Switch/On'));
  });

  it('lets a device subscribe only inside its own spaces, wildcards included', () => {
    for (const filter of ['HomeKit/a/#', 'HomeKit/a/+/+/set', 'HomeKit/a', 'cmnd/a/#', 'cmnd/a/OTA', 'a/OTA'])
      assert.ok(maySubscribe('device', 'a', filter), filter);
    for (const filter of ['#', 'HomeKit/#', 'HomeKit/+/Switch/On', 'HomeKit/b/#', 'cmnd/#', '+/OTA', 'b/OTA', 'a/#', 'stat/a/#']) {
      assert.ok(!maySubscribe('device', 'a', filter), filter);
    }
    assert.ok(maySubscribe('admin', 'x', '#'));
  });

  it('compares filters level by level', () => {
    assert.ok(filterCovers('a/+/c', 'a/b/c'));
    assert.ok(filterCovers('a/+/c', 'a/+/c'));
    assert.ok(!filterCovers('a/+/c', 'a/#'));
    assert.ok(!filterCovers('a/b', 'a/b/c'));
    assert.ok(filterCovers('a/#', 'a/b/#'));
  });

  it('gives Mosquitto the same spaces as dynamic-security ACLs', () => {
    const acls = deviceAcls('dev');
    assert.deepEqual(
      acls.filter((a) => a.acltype === 'publishClientSend').map((a) => a.topic),
      ['HomeKit/dev/+/#', 'stat/dev/+/#', 'tele/dev/+/#'],
    );
    assert.deepEqual(
      acls.filter((a) => a.acltype === 'subscribePattern').map((a) => a.topic),
      ['HomeKit/dev/#', 'cmnd/dev/#', 'dev/OTA'],
    );
  });
});

describe('account names', () => {
  it("keeps the ids that name the hub's topics, and the hub's broker account, from MQTT accounts", () => {
    for (const name of ['HomeKit', 'homekit', 'OTA', 'ota', 'Stat', 'tele', 'CMND', HUB_ACCOUNT])
      assert.match(mqttAccountNameProblem(name) ?? '', /reserved/, name);
    for (const name of ['esp8266_12345678', 'ota-1', 'HomeKit2', 'node-red']) assert.equal(mqttAccountNameProblem(name), undefined, name);
    assert.equal(accountNameProblem('OTA'), undefined, 'a web login name is not an MQTT id');
  });
});

describe('authentication throttle', () => {
  it('doubles the pause per failure up to the cap', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 10, 60].map((n) => failureDelay(n)),
      [0, 100, 200, 400, 800, 5000, 5000],
    );
  });
});
