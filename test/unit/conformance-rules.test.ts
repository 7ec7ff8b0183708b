/**
 * `mqttkit conformance` cites the contract (issue 12): every check names a rule the docs define, and
 * every protocol and OTA rule is either checked on a device or listed as the hub's own with a reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HUB_SIDE, RULES } from '../../src/conformance/rules.js';
import { definitions } from '../helpers/doc-rules.js';

const cited = (text: string) => [...text.matchAll(/\[([PO]-\d+)\]/g)].map((m) => `[${m[1]}]`);

describe('the conformance checker and the docs', () => {
  const defined = new Set(definitions().map((p) => `[${p.id}]`));
  const checked = new Set(RULES.flatMap((r) => cited(r.rule)));

  it('every check cites a rule the docs define', () => {
    assert.deepEqual(
      RULES.filter((r) => cited(r.rule).length === 0).map((r) => r.id),
      [],
      'checks without a rule',
    );
    assert.deepEqual(
      [...checked, ...Object.keys(HUB_SIDE)].filter((id) => !defined.has(id)),
      [],
      'rules the docs do not define',
    );
  });

  it("every protocol and OTA rule is checked on the device or named as the hub's own, not both", () => {
    const rules = [...defined].filter((id) => /^\[[PO]-/.test(id));
    assert.deepEqual(rules.filter((id) => !checked.has(id) && !(id in HUB_SIDE)).sort(), [], 'rules neither checked nor listed in HUB_SIDE');
    assert.deepEqual(
      [...checked].filter((id) => id in HUB_SIDE),
      [],
      'rules both checked and called hub-side',
    );
  });
});
