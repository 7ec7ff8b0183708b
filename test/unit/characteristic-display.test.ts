/** The one table of labels and units (issue 14): what people read for HAP characteristics. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { axisKind, label, reading, serviceLabel, valueText } from '../../src/core/characteristic-display.js';

describe('characteristic display', () => {
  it('reads temperatures, humidity, brightness with their units', () => {
    assert.equal(reading({ name: 'CurrentTemperature', format: 'float', unit: 'celsius' }, 20.5), 'Temperature 20.5 °C');
    assert.equal(reading({ name: 'CurrentTemperature', format: 'float', unit: 'celsius' }, 20.04), 'Temperature 20 °C');
    assert.equal(reading({ name: 'CurrentRelativeHumidity', format: 'float', unit: 'percentage' }, 46), 'Humidity 46 %');
    assert.equal(reading({ name: 'Brightness', format: 'int', unit: 'percentage' }, 100), 'Brightness 100 %');
  });
  it('says on/off and detector states in words', () => {
    assert.equal(valueText({ name: 'On', format: 'bool' }, true), 'On');
    assert.equal(valueText({ name: 'On', format: 'bool' }, false), 'Off');
    assert.equal(reading({ name: 'MotionDetected', format: 'bool' }, true), 'Motion detected');
    assert.equal(reading({ name: 'MotionDetected', format: 'bool' }, false), 'No motion');
    assert.equal(reading({ name: 'ContactSensorState', format: 'uint8' }, 1), 'Open');
    assert.equal(valueText({ name: 'SomethingNew', format: 'bool' }, true), 'Yes');
  });
  it('splits unknown names into words and marks unknown values', () => {
    assert.equal(label({ name: 'ColorTemperature' }), 'Colour temperature');
    assert.equal(label({ name: 'SomeNewThing' }), 'Some new thing');
    assert.equal(serviceLabel('TemperatureSensor'), 'Temperature sensor');
    assert.equal(valueText({ name: 'CurrentTemperature', unit: 'celsius' }, null), '–');
  });
  it('chooses chart axes by format and unit', () => {
    assert.equal(axisKind({ name: 'On', format: 'bool' }), 'step');
    assert.equal(axisKind({ name: 'Brightness', format: 'int', unit: 'percentage' }), 'percent');
    assert.equal(axisKind({ name: 'CurrentTemperature', format: 'float', unit: 'celsius' }), 'auto');
  });
});
