/**
 * The device library fits on the chip (issue 11), measured under MicroPython 1.27 (WebAssembly) per
 * port file set of device/micropython/ports.json: the heap it keeps after import (ESP8266: within
 * 16 KiB), and the OTA transfer streams (at most 512 bytes of the file read at once, no allocation larger
 * than one such chunk). How it is measured: test/helpers/device-memory.ts. Figures: docs/device.md.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { measureImport, measureTransfer, otaProblems, PORTS, pulledSha256, runBudget } from '../helpers/device-memory.js';

const KIB = 1024;

describe('device library memory under MicroPython', () => {
  for (const port of PORTS) {
    it(`${port}: the heap the library keeps after import${port === 'esp8266' ? ' stays within 16 KiB' : ''}`, async (t) => {
      const figures = await measureImport(port);
      t.diagnostic(`${port}: retained after import ${figures.retained} B; allocated while compiling: ${Object.entries(figures.compile).map(([f, n]) => `${f} ${n} B`).join(', ')}`);
      if (port === 'esp8266') assert.ok(figures.retained <= 16 * KIB, `the ESP8266 file set keeps ${figures.retained} B after import, over 16 KiB (${16 * KIB} B)`);
    });
  }

  it('an OTA transfer streams: at most 512 bytes read at once, no allocation larger than one chunk (measured)', async (t) => {
    const figures = await runBudget('esp8266', { publishes: 3, commands: 2, otaBytes: 16 * KIB });
    t.diagnostic(`esp8266 OTA of 16 KiB: ${figures.ota.reads} reads of at most ${figures.ota.maxRead} B, largest allocation ${figures.ota.largestAllocation} B, ${figures.ota.allocatedPerRead} B allocated per read, ${figures.ota.retainedAfter} B kept after`);
    assert.equal(figures.ota.report.ok, true, `the transfer failed: ${JSON.stringify(figures.ota.report)}`);
    assert.equal(figures.ota.report.hash, pulledSha256(16 * KIB));
    assert.deepEqual(otaProblems(figures.ota), []);
    assert.ok(figures.ota.reads >= 32, `${figures.ota.reads} reads for 16 KiB: the file was not read in chunks`);
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
