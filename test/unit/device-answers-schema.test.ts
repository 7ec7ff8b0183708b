/** issue 13: the schemas of the answers the hub reads (src/ota/answers.ts), for the OTA service to parse with. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAnswer } from '../../src/ota/answers.js';

describe('device answers', () => {
  it('reads what the mqttkit device library answers', () => {
    const v = parseAnswer(
      'esp32_a',
      'getversion',
      '{"firmware":"1.27.0","app":null,"library":"0.3","partition":"ota_0","ota":2,"rid":1,"hashes":["sha1","sha256"]}',
    );
    assert.ok(v.ok && v.value.ota === 2 && v.value.partition === 'ota_0' && v.value.library === '0.3');
    assert.ok(parseAnswer('esp32_a', 'stats', '{"uptime_s":5,"reconnects":0,"published":3,"received":2,"dropped":0,"queued":0,"mem_free":40000}').ok);
    assert.ok(parseAnswer('esp32_a', 'hashes', '{"main.py":"ab12"}').ok);
    assert.ok(parseAnswer('esp32_a', 'partitions', '{"count":2,"running":"ota_0"}').ok);
    assert.ok(parseAnswer('esp32_a', 'commit', '{"committed":[],"error":"commit failed"}').ok);
    assert.ok(parseAnswer('esp32_a', 'discard', '{"discarded":["a.py"]}').ok);
    assert.ok(parseAnswer('esp32_a', 'open', '{"address":"10.0.0.5"}').ok);
  });

  it('names the device, the command and the field of a bad answer', () => {
    const p = parseAnswer('esp32_a', 'partitions', '{"count":"2"}');
    assert.ok(!p.ok);
    assert.match(p.error, /^esp32_a answered 'partitions' with '\{"count":"2"\}': count: /);
    const s = parseAnswer('esp32_a', 'stats', '{"uptime_s":5}');
    assert.ok(!s.ok && /reconnects/.test(s.error));
    const o = parseAnswer('esp32_a', 'open', 'unknown command open');
    assert.ok(!o.ok && /not valid JSON/.test(o.error));
    const h = parseAnswer('esp32_a', 'hashes', '{"main.py":5}');
    assert.ok(!h.ok && /main\.py/.test(h.error));
  });
});
