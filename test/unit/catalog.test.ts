import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closestName } from '../../src/core/suggest.js';
import { HapCatalog } from '../../src/homekit/catalog.js';

const catalog = new HapCatalog();

describe('service and characteristic names', () => {
  it('knows HAP-NodeJS service names and their characteristics', () => {
    const sensor = catalog.service('TemperatureSensor');
    assert.ok(sensor.ok);
    assert.deepEqual(
      sensor.value.required.filter((n) => n !== 'Name'),
      ['CurrentTemperature'],
    );
    assert.ok(sensor.value.optional.includes('StatusLowBattery'));
    const light = catalog.service('Lightbulb');
    assert.ok(light.ok);
    assert.ok(catalog.characteristic(light.value, 'Brightness').ok);
  });

  it('suggests the closest service for a misspelling', () => {
    const result = catalog.service('TemperatureSenser');
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.error, /unknown service type 'TemperatureSenser'; did you mean 'TemperatureSensor'\?/);
    const lower = catalog.service('lightbulb');
    assert.equal(lower.ok, false);
    if (!lower.ok) assert.match(lower.error, /did you mean 'Lightbulb'/);
  });

  it('says nothing to suggest when nothing is close', () => {
    const result = catalog.service('Zzzzzzzzzzzz');
    assert.equal(result.ok, false);
    if (!result.ok) assert.doesNotMatch(result.error, /did you mean/);
  });

  it('refuses a characteristic the service does not define, suggesting one it does', () => {
    const sw = catalog.service('Switch');
    assert.ok(sw.ok);
    const misspelt = catalog.characteristic(sw.value, 'Onn');
    assert.equal(misspelt.ok, false);
    if (!misspelt.ok) assert.match(misspelt.error, /unknown characteristic 'Onn' for Switch; did you mean 'On'\?/);
    const foreign = catalog.characteristic(sw.value, 'CurrentTemperature');
    assert.equal(foreign.ok, false);
    if (!foreign.ok) assert.match(foreign.error, /Switch has no characteristic 'CurrentTemperature'/);
  });

  it('refuses AccessoryInformation as a service and points to the metadata topics', () => {
    const result = catalog.service('AccessoryInformation');
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.error, /\$name/);
  });

  it('refuses services that need binary controller data', () => {
    const result = catalog.service('CameraRTPStreamManagement');
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.error, /cannot be driven over MQTT/);
  });

  it('closestName tolerates case and a couple of typos', () => {
    assert.equal(closestName('currenttemperature', ['CurrentTemperature', 'On']), 'CurrentTemperature');
    assert.equal(closestName('Brightnes', ['Brightness', 'Hue']), 'Brightness');
    assert.equal(closestName('Q', ['Brightness']), undefined);
  });
});
