/**
 * Scenario 7: the device library's memory budget, measured inside MicroPython 1.27 (WebAssembly) per
 * port file set (device/micropython/ports.json) with a scripted broker and pull server
 * (test/helpers/membench.py): connect, publishes, commands, an OTA transfer. The heap between steps is
 * exact (collected); within a step this build frees nothing, so the block map at its end shows every
 * allocation it made: the largest single allocation is measured, and (heap at a step's start + all it
 * allocated) bounds its peak from above. Targets (issue 11): on ESP8266 retained after import and
 * connected-idle (above the pre-import heap) within 16 KiB; peak under 16 KiB above idle, including the
 * on-demand loads of commands.py and ota.py; OTA chunk memory at most 512 bytes.
 */
import { measureImport, OTA_ALLOCATION_TARGET, OTA_CHUNK_TARGET, PORTS, runBudget } from '../../test/helpers/device-memory.js';
import { type Row, row } from '../stats.js';

const KIB = 1024;

export async function deviceMemory(options: { publishes: number; commands: number; otaBytes: number }): Promise<Row[]> {
  const rows: Row[] = [];
  for (const port of PORTS) {
    const imported = await measureImport(port);
    const f = await runBudget(port, options);
    if (!f.ota.report.ok) throw new Error(`${port}: the OTA transfer failed: ${JSON.stringify(f.ota.report)}`);
    const name = `7. device memory, ${port} file set (MicroPython wasm; ${options.publishes} publishes, ${options.commands} commands, ${Math.round(options.otaBytes / KIB)} KiB OTA)`;
    const largestCompile = Math.max(...Object.values(imported.compile));
    rows.push(
      row(
        name,
        'heap kept after import (import mqttkit; from mqttkit import Device)',
        imported.retained,
        'B',
        port === 'esp8266' ? { target: ['<= 16384', (v) => v <= 16 * KIB] } : {},
      ),
      row(
        name,
        `largest allocation while compiling one file (${Object.entries(imported.compile).find(([, n]) => n === largestCompile)?.[0]})`,
        largestCompile,
        'B',
      ),
      row(name, 'connected and idle, above the heap before import', f.idleAbove, 'B', port === 'esp8266' ? { target: ['<= 16384', (v) => v <= 16 * KIB] } : {}),
      row(name, 'commands.py loaded on demand: heap it keeps', f.commandsLoaded, 'B'),
      row(name, 'ota.py loaded on demand: heap it keeps', f.otaLoaded, 'B'),
      row(name, 'kept above idle once the on-demand modules are dropped (their names)', f.afterOtaDropped, 'B'),
      row(name, 'peak heap between steps above idle (exact)', f.livePeakAboveIdle, 'B', { target: ['< 16384', (v) => v < 16 * KIB] }),
      row(name, 'peak within a publish step above idle (upper bound: garbage included)', f.publishPeakAboveIdle, 'B', {
        target: ['< 16384', (v) => v < 16 * KIB],
      }),
      row(name, 'peak within a command step above idle (upper bound; commands.py compiled by the first)', f.commandPeakAboveIdle, 'B', {
        target: ['< 16384', (v) => v < 16 * KIB],
      }),
      row(name, 'peak during the OTA trigger and transfer above idle (upper bound; ota.py compiled)', f.otaPeakAboveIdle, 'B', {
        target: ['< 16384', (v) => v < 16 * KIB],
      }),
      row(name, `largest single allocation (${f.largestWhere})`, f.largestAllocation, 'B'),
      row(name, 'OTA: file bytes read at once (max)', f.ota.maxRead, 'B', { target: [`<= ${OTA_CHUNK_TARGET}`, (v) => v <= OTA_CHUNK_TARGET] }),
      row(name, 'OTA chunk memory: largest allocation during the transfer', f.ota.largestAllocation, 'B', {
        target: [`<= ${OTA_ALLOCATION_TARGET} (512 B + GC block)`, (v) => v <= OTA_ALLOCATION_TARGET],
      }),
      row(name, 'OTA: bytes allocated per read (garbage included)', f.ota.allocatedPerRead, 'B'),
      row(name, 'OTA: heap kept after the transfer (ota.py dropped)', f.ota.retainedAfter, 'B'),
    );
  }
  return rows;
}
