/** The hub's own log as the dashboard's Security page shows it (src/log/log-ring.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readLine } from '../../src/log/log-ring.js';

describe('hub log lines', () => {
  it('shows the message and its fields on one line, at its level', () => {
    const line = readLine(JSON.stringify({ level: 40, time: 1000, msg: 'connection refused: bad password', client: 'dev-1', address: '10.0.0.5' }), 7);
    assert.deepEqual(line, { id: 7, level: 'warn', at: 1000, text: 'connection refused: bad password client=dev-1 address=10.0.0.5' });
  });

  it('keeps a peer-chosen newline or escape from forging a line of its own', () => {
    // What an MQTT peer can put in its client id before it is refused.
    const client = 'x\n12:00:00 INFO  dashboard admin account created user=mallory\u001b[2J';
    const line = readLine(JSON.stringify({ level: 40, time: 1000, msg: 'connection refused: bad password', client }), 1)!;
    assert.equal(line.text.includes('\n'), false);
    assert.equal(line.text.includes('\u001b'), false);
    assert.match(line.text, /client=x\\x0a12:00:00 INFO {2}dashboard admin account created user=mallory\\x1b\[2J$/);
    assert.equal(line.level, 'warn');
  });

  it('ignores what is not a JSON object', () => {
    assert.equal(readLine('not json', 1), undefined);
    assert.equal(readLine('[1,2]', 1), undefined);
  });
});
