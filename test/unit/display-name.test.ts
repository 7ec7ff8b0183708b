import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { homeKitFirmware, homeKitName } from '../../src/homekit/display-name.js';
import { checkPincode, generatePincode } from '../../src/homekit/pincode.js';

describe('HomeKit-safe names and codes', () => {
  it('turns device ids and free text into names HomeKit accepts', () => {
    assert.equal(homeKitName('esp8266_12345678'), 'esp8266 12345678');
    assert.equal(homeKitName('  Kitchen: lamp!! '), 'Kitchen lamp');
    assert.equal(homeKitName("Tom's lamp"), "Tom's lamp");
    assert.equal(homeKitName('_-_'), 'Device');
    assert.equal(homeKitName('A'), 'Device A');
    assert.equal(homeKitName('x'.repeat(80)).length, 64);
  });

  it('reads a HAP firmware revision out of version strings', () => {
    assert.equal(homeKitFirmware('1.4.2'), '1.4.2');
    assert.equal(homeKitFirmware('v2.0-beta'), '2.0');
    assert.equal(homeKitFirmware('nightly'), undefined);
  });

  it('generates valid setup codes and refuses forbidden ones', () => {
    for (let i = 0; i < 50; i++) assert.ok(checkPincode(generatePincode()).ok);
    assert.equal(checkPincode('123-45-678').ok, false);
    assert.equal(checkPincode('000-00-000').ok, false);
    assert.equal(checkPincode('031-45-154').ok, true);
  });
});
