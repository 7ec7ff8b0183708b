/**
 * Property (issue 12, item 1, [O-12]): whatever a device logs on stat/<id>/Log around its answers —
 * any text, JSON objects, late answers to earlier request ids — the hub's command channel takes only
 * the answer to the command it sent, for a device that echoes request ids. For a device that does not
 * echo, a JSON command's answer is still found among log lines that are not JSON objects.
 * Real parts: the embedded aedes broker (the hub's in-process link), DeviceChannel, and OtaStore on a
 * SQLite file; the device answers through the broker.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { EmbeddedBroker } from '../../src/broker/embedded-broker.js';
import type { HubLink } from '../../src/broker/hub-link.js';
import { createLogger } from '../../src/log/logger.js';
import { DeviceChannel } from '../../src/ota/device-channel.js';
import { Registration } from '../../src/security/registration.js';
import { AccountStore } from '../../src/store/account-store.js';
import { openSqliteEngine } from '../../src/store/engine/open.js';
import type { SqlEngine } from '../../src/store/engine/sql-engine.js';
import { OtaStore } from '../../src/store/ota-store.js';

const COMMANDS = ['getversion', 'stats', 'hashes', 'msg_reboot', 'msg_exception', 'open', 'mine a b'] as const;
const JSON_COMMANDS = new Set(['getversion', 'stats', 'hashes']);

/** What the device says on Log after one command: log lines, then the answer, then more log lines. */
interface Turn {
  command: (typeof COMMANDS)[number];
  before: Noise[];
  afterwards: Noise[];
}
type Noise = { kind: 'text'; text: string } | { kind: 'json'; text: string } | { kind: 'late'; back: number };

const noise: fc.Arbitrary<Noise> = fc.oneof(
  // Any text, except what only answers may look like: a line starting with `#<digits> ` (docs/ota.md §3).
  fc
    .string({ maxLength: 40 })
    .filter((t) => !/^#\d+ /.test(t))
    .map((text) => ({ kind: 'text' as const, text })),
  fc
    .dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), { maxKeys: 3 })
    .map((o) => ({ kind: 'json' as const, text: JSON.stringify(o) })),
  // A late answer to an earlier request (one that timed out, or a duplicate).
  fc.integer({ min: 1, max: 3 }).map((back) => ({ kind: 'late' as const, back })),
);
const turn: fc.Arbitrary<Turn> = fc.record({
  command: fc.constantFrom(...COMMANDS),
  before: fc.array(noise, { maxLength: 4 }),
  afterwards: fc.array(noise, { maxLength: 3 }),
});

/** The i-th answer; an echoing device's `getversion` says so (`"rid": 1`), or the hub stops sending ids; a `getversion` answer holds its fields (`firmware`). */
const answerFor = (command: string, i: number, echo = true) =>
  JSON_COMMANDS.has(command.split(' ')[0]!)
    ? JSON.stringify({ answer: i, of: command, ...(command === 'getversion' ? { firmware: 'test', ...(echo ? { rid: 1 } : {}) } : {}) })
    : `answer ${i} to ${command}`;

describe('request ids: log lines around answers are never taken for answers ([O-12])', { timeout: 120_000 }, () => {
  let dir: string;
  let db: SqlEngine;
  let broker: EmbeddedBroker;
  let link: HubLink;
  let channel: DeviceChannel;
  let store: OtaStore;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mqttkit-rid-'));
    db = openSqliteEngine(join(dir, 'mqttkit.db'));
    const log = createLogger('silent', false);
    broker = await EmbeddedBroker.start({ host: '127.0.0.1', port: 0, registration: new Registration(new AccountStore(db), 'closed', log) }, log);
    link = broker.link();
    store = new OtaStore(db);
    channel = new DeviceChannel(link, store, log);
    await channel.start();
  });
  after(async () => {
    await link.close();
    await broker.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Plays one device: for each command it receives, publishes the turn's lines in order. */
  async function play(device: string, turns: Turn[], echo: boolean): Promise<string[]> {
    const sent: string[] = [];
    let n = 0;
    await link.subscribe(`cmnd/${device}/OTA`, (message) => {
      const text = message.payload.toString();
      sent.push(text);
      const t = turns[n];
      const i = n++;
      if (!t) return;
      const rid = /^#\d+ /.exec(text)?.[0] ?? '';
      const say = (line: string) => link.publish(`stat/${device}/Log`, line, { qos: 1, retain: false });
      const lines = (list: Noise[]) =>
        list.map((x) => {
          if (x.kind !== 'late') return x.text;
          const earlier = sent[i - x.back];
          const earlierRid = earlier && /^#\d+ /.exec(earlier)?.[0];
          return earlierRid ? `${earlierRid}${answerFor(turns[i - x.back]!.command, i - x.back)}` : 'no earlier request';
        });
      void (async () => {
        for (const line of lines(t.before)) await say(line);
        await say((echo ? rid : '') + answerFor(t.command, i, echo));
        for (const line of lines(t.afterwards)) await say(line);
      })();
    });
    return sent;
  }

  it('a device that echoes: every command resolves with exactly its own answer', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(turn, { minLength: 1, maxLength: 6 }), async (generated) => {
        const device = `echo-${run++}`;
        // The session's first getversion (plain, quiet) tells the hub that the device echoes ("rid": 1).
        const turns: Turn[] = [{ command: 'getversion', before: [], afterwards: [] }, ...generated];
        const sent = await play(device, turns, true);
        for (const [i, t] of turns.entries()) {
          const answer = await channel.command(device, t.command, 5000);
          assert.equal(answer, answerFor(t.command, i), `command ${i} (${t.command})`);
        }
        assert.ok(
          sent.slice(1).every((s) => /^#\d+ /.test(s)),
          'every command after getversion carried an id',
        );
      }),
      { numRuns: Number(process.env.MQTTKIT_PROP_RUNS ?? 60) },
    );
  });

  it('a device that does not echo: a JSON command is answered by the JSON object among text log lines', async () => {
    let run = 0;
    const textOnly = fc.string({ maxLength: 40 }).filter((t) => !t.trim().startsWith('{') && !t.startsWith('unknown command') && !t.startsWith('command '));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ command: fc.constantFrom('getversion', 'stats', 'hashes'), before: fc.array(textOnly, { maxLength: 4 }) }), {
          minLength: 1,
          maxLength: 5,
        }),
        async (list) => {
          const device = `plain-${run++}`;
          const turns: Turn[] = list.map((x) => ({ command: x.command, before: x.before.map((text) => ({ kind: 'text' as const, text })), afterwards: [] }));
          const sent = await play(device, turns, false);
          for (const [i, t] of turns.entries()) assert.equal(await channel.command(device, t.command, 5000), answerFor(t.command, i, false));
          assert.ok(
            sent.every((s) => !s.startsWith('#')),
            'no ids to a device not known to echo',
          );
        },
      ),
      { numRuns: Number(process.env.MQTTKIT_PROP_RUNS ?? 40) },
    );
  });
});
