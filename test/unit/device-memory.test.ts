/**
 * The device library fits on the chip (issue 11), measured under MicroPython 1.27 (WebAssembly) per
 * port file set of device/micropython/ports.json. "Retained" is read both ways, and both must hold on
 * the ESP8266: the heap kept after `import mqttkit` / `from mqttkit import Device` (what a board's main.py
 * does) within 16 KiB, and the heap with a Device constructed and connected (idle), above the heap before
 * the import, within 16 KiB. The rarely needed modules load on demand (commands.py, ota.py) and their
 * peak stays under 16 KiB above idle; the OTA transfer streams (at most 512 bytes of the file read at
 * once, no allocation larger than one such chunk). How it is measured: test/helpers/device-memory.ts.
 * Figures: docs/device.md.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { measureImport, measureTransfer, otaProblems, PORTS, pulledSha256, runBudget } from '../helpers/device-memory.js';

const KIB = 1024;
const BUDGET = 16 * KIB;
const kb = (n: number) => `${(n / 1000).toFixed(1)} KB`;

describe('device library memory under MicroPython', () => {
  for (const port of PORTS) {
    it(`${port}: the heap the library keeps after import${port === 'esp8266' ? ' stays within 16 KiB' : ''}; commands.py, ota.py and identity.py are not among it`, async (t) => {
      const figures = await measureImport(port);
      t.diagnostic(
        `${port}: retained after import ${figures.retained} B (target${port === 'esp8266' ? '' : ' for esp8266'} <= ${BUDGET} B); loaded: ${figures.loaded.join(' ')}; allocated while compiling: ${Object.entries(
          figures.compile,
        )
          .map(([f, n]) => `${f} ${n} B`)
          .join(', ')}`,
      );
      for (const lazy of ['mqttkit.commands', 'mqttkit.ota', 'mqttkit.identity'])
        assert.ok(!figures.loaded.includes(lazy), `${lazy} is loaded at import: it should load on demand`);
      if (port === 'esp8266') assert.ok(figures.retained <= BUDGET, `the ESP8266 file set keeps ${figures.retained} B after import, over 16 KiB (${BUDGET} B)`);
    });
  }

  it('esp8266: connected and idle within 16 KiB; a command and a 16 KiB OTA transfer (modules loaded on demand) peak under 16 KiB above idle; the transfer streams', async (t) => {
    const f = await runBudget('esp8266', { publishes: 3, commands: 2, otaBytes: 16 * KIB });
    t.diagnostic(
      `esp8266: after import ${f.retained} B (target <= ${BUDGET}); connected and idle ${f.idleAbove} B above the pre-import heap (target <= ${BUDGET})`,
    );
    t.diagnostic(
      `esp8266: commands.py loaded by the first command keeps ${f.commandsLoaded} B, command peak ${f.commandPeakAboveIdle} B above idle (upper bound, target < ${BUDGET}); dropped again: ${f.afterCommandsDropped} B above idle stays (interned names)`,
    );
    t.diagnostic(
      `esp8266: ota.py loaded by the trigger keeps ${f.otaLoaded} B, trigger + transfer peak ${f.otaPeakAboveIdle} B above idle (upper bound, target < ${BUDGET}); dropped again: ${f.afterOtaDropped} B above idle`,
    );
    t.diagnostic(
      `esp8266 OTA of 16 KiB: ${f.ota.reads} reads of at most ${f.ota.maxRead} B, largest allocation ${f.ota.largestAllocation} B, ${f.ota.allocatedPerRead} B allocated per read, ${f.ota.retainedAfter} B kept after; largest allocation of any step ${f.largestAllocation} B (${f.largestWhere})`,
    );
    assert.ok(f.idleAbove <= BUDGET, `a connected ESP8266 device keeps ${f.idleAbove} B (${kb(f.idleAbove)}) above the pre-import heap, over 16 KiB`);
    assert.ok(f.commandPeakAboveIdle < BUDGET, `a command peaks ${f.commandPeakAboveIdle} B above idle, over 16 KiB`);
    assert.ok(f.otaPeakAboveIdle < BUDGET, `an OTA trigger and transfer peak ${f.otaPeakAboveIdle} B above idle, over 16 KiB`);
    assert.ok(f.commandsLoaded > 0 && f.otaLoaded > 0, 'the on-demand modules were loaded when needed');
    assert.ok(f.afterOtaDropped < f.otaLoaded, `dropping ota.py gave nothing back (${f.afterOtaDropped} B above idle, ${f.otaLoaded} B while loaded)`);
    assert.equal(f.ota.report.ok, true, `the transfer failed: ${JSON.stringify(f.ota.report)}`);
    assert.equal(f.ota.report.hash, `sha256:${pulledSha256(16 * KIB)}`, "[O-16] the report carries the hash in the trigger's form");
    assert.deepEqual(otaProblems(f.ota), []);
    assert.ok(f.ota.reads >= 32, `${f.ota.reads} reads for 16 KiB: the file was not read in chunks`);
  });

  it('the guard catches a receiver that holds the file in memory', async () => {
    const holdsFile = `
import socket
s = socket.socket()
s.connect(socket.getaddrinfo(host, port_number, 0, socket.SOCK_STREAM)[0][-1])
data = b''
while True:
    chunk = s.recv(512)
    if not chunk:
        break
    data += chunk
s.close()
`;
    const readsAll = `
import socket
s = socket.socket()
s.connect(socket.getaddrinfo(host, port_number, 0, socket.SOCK_STREAM)[0][-1])
data = s.recv(16384)
s.recv(16384)
s.close()
`;
    const held = await measureTransfer('esp8266', 16 * KIB, holdsFile);
    assert.match(otaProblems(held).join('; '), /allocated \d+ bytes in one block/);
    const whole = await measureTransfer('esp8266', 16 * KIB, readsAll);
    assert.match(otaProblems(whole).join('; '), /read 16384 bytes at once/);
  });
});
