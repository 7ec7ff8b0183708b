import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkName } from 'hap-nodejs/dist/lib/util/checkName.js';
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

/** HAP-NodeJS's own check: it warns (console.warn) about a name the Home app may refuse. */
function hapRefuses(name: string): boolean {
  const warn = console.warn;
  let warned = false;
  console.warn = () => (warned = true);
  try {
    checkName('probe', 'Name', name);
  } finally {
    console.warn = warn;
  }
  return warned;
}

const HOSTILE = [
  '\u202e',
  '\u202a',
  '\u2066',
  '\u2069',
  '\u200e',
  '\u200f',
  '\u061c',
  '\u200b',
  '\u200d',
  '\ufeff',
  '\u00ad',
  '<',
  '>',
  '&',
  '"',
  '\u0000',
  '\u001b',
  '\u007f',
  '\n',
  '\t',
  ' ',
  '\u00a0',
  '\u3000',
  '🙂',
  'e\u0301',
];

describe('one name rule for everything HomeKit shows (finding 9)', () => {
  it('drops bidi controls and zero-width characters, turns markup into spaces, keeps every script', () => {
    assert.equal(homeKitName('Lamp\u202Etxt.exe'), 'Lamptxt.exe');
    assert.equal(homeKitName('Ki\u200Btch\u200Den\u2066 lamp\u2069'), 'Kitchen lamp');
    assert.equal(homeKitName('<b>Lamp</b>'), 'b Lamp b');
    assert.equal(homeKitName('"Tom & Jerry"'), 'Tom Jerry');
    assert.equal(homeKitName('Living\nroom\t lamp'), 'Living room lamp');
    assert.equal(homeKitName('\u061C\u200E\u200F'), 'Device');
    assert.equal(homeKitName('Кухня 2'), 'Кухня 2');
    assert.equal(homeKitName('客厅 灯'), '客厅 灯');
    assert.equal(homeKitName('مصباح المطبخ'), 'مصباح المطبخ');
    assert.equal(homeKitName('Cafe\u0301'), 'Café');
    assert.equal(homeKitName('💡', 'relay1 Switch 2'), 'relay1 Switch 2');
    assert.equal(homeKitName('<>', '<also bad>'), 'also bad');
  });

  it("gives, for any text, a name HAP-NodeJS's checkName accepts, free of invisible and markup characters", () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 100 }),
      fc.string({ unit: 'grapheme', maxLength: 100 }),
      fc.array(fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ unit: 'grapheme-ascii', maxLength: 4 })), { maxLength: 40 }).map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(text, fc.constantFrom('Device', 'relay1 Switch 2', '<x>'), (input, fallback) => {
        const name = homeKitName(input, fallback);
        assert.ok(!hapRefuses(name), `checkName refuses ${JSON.stringify(name)}`);
        assert.doesNotMatch(name, /[\p{Cf}\p{Cc}<>&"]/u);
        assert.ok(name.length <= 64, 'at most 64 UTF-16 units, as HAP-NodeJS counts');
        assert.doesNotMatch(name, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/, 'no lone surrogate');
        assert.equal(homeKitName(name, fallback), name, 'a clean name stays as it is');
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps names made of letters and digits of any script as they are', () => {
    const letter = fc
      .integer({ min: 0x30, max: 0x2ffff })
      .map((cp) => String.fromCodePoint(cp))
      .filter((c) => /^[\p{L}\p{N}]$/u.test(c) && c.normalize('NFC') === c);
    const word = fc.array(letter, { minLength: 2, maxLength: 8 }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 6 }), (words) => {
        const name = words.join(' ');
        fc.pre(name.length <= 64); // HAP counts UTF-16 units: a letter beyond U+FFFF counts two
        assert.equal(homeKitName(name), name);
      }),
      { numRuns: 500 },
    );
  });
});
