/**
 * Memory of the device library measured under MicroPython 1.27 (WebAssembly), per port file set
 * (device/micropython/ports.json). Its heap grows on demand, so it cannot play a 36 KiB ESP8266; we
 * measure instead: gc.collect() then gc.mem_alloc() around each step, and micropython.mem_info(1)'s block
 * map for single allocations (16-byte GC blocks, as on the 32-bit ESP chips). Stand-ins for the board
 * (machine, network, esp32, socket) and MicroPython's own modules are imported before the baseline: only the
 * library's heap is counted. test/helpers/membench.py is the scripted broker and OTA pull server.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMicroPython, type MicroPythonInstance } from '@micropython/micropython-webassembly-pyscript/micropython.mjs';
import { boardModules } from './board-standins.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const LIBRARY = join(ROOT, 'device/micropython');
const MEMBENCH = join(ROOT, 'test/helpers/membench.py');
export const PORTS = ['esp32', 'esp8266'] as const;
export type Port = (typeof PORTS)[number];
export const BLOCK = 16; // bytes per GC block on a 32-bit MicroPython (ESP8266, ESP32, wasm32)

/** The board modules (test/helpers/board-standins.ts), with the scripted broker's socket. */
const SOCKET = `
from membench import FakeSocket as socket
SOCK_STREAM = 1
AF_INET = 2
def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0): return [(2, 1, 0, '', (host, port))]
`;

/** What MicroPython's firmware provides (ROM on a board): imported before the baseline. */
const FIRMWARE_MODULES = ['gc', 'sys', 'io', 'os', 'time', 'json', 'struct', 'hashlib', 'binascii', 'select', 'errno', 'random', 'micropython'];

export function portFiles(port: Port): string[] {
  const ports = JSON.parse(readFileSync(join(LIBRARY, 'ports.json'), 'utf8')) as Record<string, string[]>;
  const files = ports[port];
  if (!Array.isArray(files) || files.length === 0) throw new Error(`device/micropython/ports.json lists no files for ${port}`);
  return files;
}

export interface Board {
  mp: MicroPythonInstance;
  /** Runs Python; returns what it printed. Garbage is collected when it returns, if gc.collect() was asked. */
  run(code: string): string;
  /** The heap in use, read between calls (no code is compiled for it, so nothing is allocated). */
  live(): number;
}

/** A fresh MicroPython with the port's files on /lib, the stand-ins imported, the library not yet. */
export async function board(port: Port, files = portFiles(port)): Promise<Board> {
  let output = '';
  const mp = await loadMicroPython({ stdout: (line: string) => (output += `${line}\n`), stderr: (line: string) => (output += `${line}\n`) });
  const run = (code: string) => {
    output = '';
    try {
      mp.runPython(code);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- output ---\n${output.slice(-4000)}`);
    }
    return output;
  };
  mp.FS.mkdirTree('/lib');
  mp.FS.mkdirTree('/device');
  for (const [name, text] of Object.entries(boardModules(SOCKET))) mp.FS.writeFile(`/lib/${name}`, text);
  mp.FS.writeFile('/lib/membench.py', readFileSync(MEMBENCH, 'utf8'));
  for (const file of files) {
    mp.FS.mkdirTree(`/lib/${file.split('/').slice(0, -1).join('/')}`);
    mp.FS.writeFile(`/lib/${file}`, readFileSync(join(LIBRARY, file), 'utf8'));
  }
  mp.FS.writeFile('/device/config.json', JSON.stringify({ broker: '192.0.2.1', port: 1883, device_id: 'mem-1', keepalive: 30 }));
  run(
    `import sys\nsys.path.insert(0, '/lib')\nimport ${FIRMWARE_MODULES.join(', ')}\nimport machine, network, socket, membench\nmachine.PORT = '${port}'\n${port === 'esp32' ? 'import esp32\n' : ''}from membench import live`,
  );
  const liveFunction = mp.globals.get('live') as () => number;
  return { mp, run, live: () => Number(liveFunction()) };
}

/** What a board's main.py does: imports the package (the rarely needed modules load later, on demand). */
const MAIN_IMPORT = 'import mqttkit\nfrom mqttkit import Device';

export interface ImportFigures {
  port: Port;
  /** Heap the library keeps after `import mqttkit` / `from mqttkit import Device` (bytes). */
  retained: number;
  /** The modules that import loaded (the others load on demand). */
  loaded: string[];
  /** Per file: bytes allocated while compiling it (garbage included: an upper bound of the compile peak). */
  compile: Record<string, number>;
}

export async function measureImport(port: Port): Promise<ImportFigures> {
  const files = portFiles(port);
  const b = await board(port, files);
  b.run('gc.collect()');
  const base = b.live();
  b.run(`${MAIN_IMPORT}\ngc.collect()`);
  const retained = b.live() - base;
  const loaded = b.run("print(' '.join(sorted(n for n in sys.modules if n.startswith('mqttkit'))))").trim().split(' ');
  // Compiled after the import, so the figure is the compiler's working memory, not the qstrs the
  // import already interned. Nothing is freed inside a call here: the difference is all it allocated.
  const compile: Record<string, number> = {};
  for (const file of files) {
    b.mp.globals.set('source', readFileSync(join(LIBRARY, file), 'utf8'));
    compile[file] = Number(
      b.run(`_a = gc.mem_alloc()\n_c = compile(source, '${file}', 'exec')\nprint(gc.mem_alloc() - _a)\n_c = source = None\ngc.collect()`).trim(),
    );
  }
  return { port, retained, loaded, compile };
}

/** A mark: the heap in use and its block map, printed by membench.mark() at the start or end of a step. */
interface Mark {
  label: string;
  where: string;
  alloc: number;
  /** Allocations in the block map: address -> size in bytes. */
  blocks: Map<number, number>;
}

/** Parses membench's '@@ label where alloc' lines and the mem_info(1) block map after each. */
function parseMarks(text: string): Mark[] {
  const marks: Mark[] = [];
  let current: Mark | undefined;
  let base = 0;
  let head = -1;
  let previous = -2;
  for (const line of text.split(/\r?\n/)) {
    const mark = /^@@ (\S+) (\S+) (\d+)$/.exec(line);
    if (mark) {
      current = { label: mark[1]!, where: mark[2]!, alloc: Number(mark[3]), blocks: new Map() };
      marks.push(current);
      head = -1;
      previous = -2;
      continue;
    }
    const area = /^GC memory layout; from ([0-9a-f]+):/.exec(line);
    if (area) {
      base = parseInt(area[1]!, 16);
      continue;
    }
    const row = /^([0-9a-f]{8}): (\S+)$/.exec(line);
    if (!row || !current) continue;
    const start = base + parseInt(row[1]!, 16);
    for (let i = 0; i < row[2]!.length; i++) {
      const ch = row[2]![i]!;
      const at = start + i * BLOCK;
      if (ch === '.') continue;
      if (ch === '=' && head >= 0 && at === previous + BLOCK) current.blocks.set(head, current.blocks.get(head)! + BLOCK);
      else if (ch !== '=') {
        head = at;
        current.blocks.set(at, BLOCK);
      }
      previous = at;
    }
  }
  return marks;
}

/** The largest allocation in `end` that `start` did not hold (same address, same size). */
function largestNew(start: Mark, end: Mark): number {
  let largest = 0;
  for (const [at, size] of end.blocks) if (start.blocks.get(at) !== size && size > largest) largest = size;
  return largest;
}

export interface Step {
  label: string;
  /** Heap in use when the step began (exact: collected between calls). */
  liveBefore: number;
  /** Bytes the step allocated, garbage included (nothing is freed inside a call in this build). */
  allocated: number;
  /** The largest single allocation the step made (bytes, in 16-byte GC blocks). */
  largest: number;
  /** Heap in use after the step, once its garbage is collected (exact). */
  liveAfter: number;
}

/** Runs `body` as one step: one call into MicroPython, marked at its start and end. */
function step(b: Board, label: string, body: string, from = 'start', to = 'end'): Step {
  return steps(b, label, body, [[from, to]])[0]!;
}

/** One step measured over several mark ranges (e.g. the whole OTA trigger and the transfer within it). */
function steps(b: Board, label: string, body: string, ranges: Array<[string, string]>): Step[] {
  const text = b.run(`membench.STATE['label'] = '${label}'\nmembench.mark('start')\n${body}\nmembench.mark('end')\ngc.collect()`);
  const marks = parseMarks(text);
  const liveAfter = b.live();
  return ranges.map(([from, to]) => {
    const start = marks.find((m) => m.where === from);
    const end = marks.find((m) => m.where === to);
    if (!start || !end) throw new Error(`step ${label}: no heap marks ${from}/${to} in the output:\n${text.slice(0, 2000)}`);
    return { label, liveBefore: start.alloc, allocated: end.alloc - start.alloc, largest: largestNew(start, end), liveAfter };
  });
}

export interface OtaFigures {
  /** Largest read the library asked the socket for during the transfer (bytes of file held at once). */
  maxRead: number;
  reads: number;
  /** Largest single allocation during the transfer (bytes, block-rounded): every allocation is seen. */
  largestAllocation: number;
  /** Bytes allocated per read, garbage included. */
  allocatedPerRead: number;
  /** Heap in use after the transfer above the heap before it, once ota.py is dropped again (exact; with
   *  ota.py's interned names, which stay). */
  retainedAfter: number;
  /** The report the device published on stat/<id>/OTA. */
  report: { ok: boolean; hash: string | null; error: string | null };
}

/** sha256 of the file the pull server generates (byte i is i & 0xff); the wasm build has no sha1. */
export function pulledSha256(bytes: number): string {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = i & 0xff;
  return createHash('sha256').update(data).digest('hex');
}

export interface BudgetOptions {
  publishes: number;
  commands: number;
  otaBytes: number;
}

export interface BudgetFigures {
  port: Port;
  /** Heap the library keeps after import (bytes). */
  retained: number;
  /** Heap with the device constructed, connected and idle, above the heap before the library was imported. */
  idleAbove: number;
  /** Largest heap in use between steps, above idle (exact; a lingering commands.py or ota.py included). */
  livePeakAboveIdle: number;
  /** Largest (heap at a step's start + what the step allocated) above idle over the publish steps: an
   *  upper bound of the peak, garbage included. */
  publishPeakAboveIdle: number;
  /** The same over the command steps: commands.py compiled and loaded by the first, ota.py by `hashes`. */
  commandPeakAboveIdle: number;
  /** The same for the OTA trigger, from its arrival to the end of the transfer: ota.py compiled and
   *  loaded (it was not), then the transfer. */
  otaPeakAboveIdle: number;
  /** Heap commands.py keeps while loaded: after the first command, above idle (exact). */
  commandsLoaded: number;
  /** Heap ota.py keeps while loaded: after the transfer and its report, above the heap before (exact). */
  otaLoaded: number;
  /** Above idle once the on-demand modules are dropped again, after the commands and after the OTA:
   *  what stays is their interned names (MicroPython never frees a qstr). */
  afterCommandsDropped: number;
  afterOtaDropped: number;
  /** The largest single allocation of any publish or command step, or of the transfer, and where. */
  largestAllocation: number;
  largestWhere: string;
  published: number;
  ota: OtaFigures;
}

const TRIGGER_HOST = '192.0.2.1';

/** Lets the on-demand modules' linger expire now and runs a step, which drops them. */
const EXPIRE = 'd.loaded = dict((name, time.ticks_add(time.ticks_ms(), -10 ** 6)) for name in d.loaded)\nd.step(0)\ngc.collect()';

/**
 * The budget scenario, one call per step: connect, `publishes` publishes, `commands` commands (half
 * cmnd/<id>/OTA commands, half HomeKit writes); the on-demand modules dropped; then an `otaBytes` pull
 * transfer the library stages, and the modules dropped again. `receiver` is Python run after import
 * that may replace the library's OTA receive (the test that proves the guard can fail).
 */
export async function runBudget(port: Port, options: BudgetOptions, receiver = ''): Promise<BudgetFigures> {
  const files = portFiles(port);
  const b = await board(port, files);
  b.run('gc.collect()');
  const base = b.live();
  b.run(`${MAIN_IMPORT}\ngc.collect()`);
  const retained = b.live() - base;
  b.run(`
from mqttkit import files
files.ROOT = '/device'
${receiver}
d = Device(name='Bench', firmware='1.0.0')
d.on_set('Switch', 'On', lambda value: value)
membench.STATE['label'] = 'connect'
for _ in range(20):
    d.step(0)
    if d.connected and not d.queue and not d.inflight:
        break
assert d.connected, 'the device did not connect to the scripted broker'
gc.collect()
`);
  const idle = b.live();
  const publishes: Step[] = [];
  for (let i = 0; i < options.publishes; i++)
    publishes.push(step(b, 'publish', `d.publish('TemperatureSensor', 'CurrentTemperature', ${20 + i / 10})\nd.step(0)`));
  const names = ['getversion', 'msg_reboot', 'msg_exception', 'stats', 'hashes'];
  const commands: Step[] = [];
  let commandsLoaded = 0;
  for (let i = 0; i < options.commands; i++) {
    const inject =
      i % 2
        ? `membench.Broker.current.inject('HomeKit/mem-1/Switch/On/set', '${i % 4 === 1 ? 1 : 0}')`
        : `membench.Broker.current.inject('cmnd/mem-1/OTA', '${names[(i / 2) % names.length]}')`;
    commands.push(step(b, 'command', `${inject}\nd.step(0)\nd.step(0)`));
    if (i === 0) commandsLoaded = b.live() - idle;
  }
  b.run(EXPIRE);
  const afterCommandsDropped = b.live() - idle;
  b.run(`membench.STATE['pull_size'] = ${options.otaBytes}\nmembench.STATE['max_read'] = 0\nmembench.STATE['reads'] = 0`);
  const sha256 = pulledSha256(options.otaBytes);
  const liveBeforeOta = b.live();
  // Two ranges of one step: the whole trigger (ota.py compiled and loaded, then the transfer) and the
  // transfer alone, from the pull connection to its end of file.
  const [trigger, ota] = steps(b, 'ota', `membench.Broker.current.inject('mem-1/OTA', '${TRIGGER_HOST}|8266|payload.bin|sha256:${sha256}|0')\nd.step(0)`, [
    ['start', 'transfer-end'],
    ['transfer-start', 'transfer-end'],
  ]) as [Step, Step];
  const report = step(b, 'ota-report', 'for _ in range(5):\n    d.step(0)');
  const otaLoaded = b.live() - liveBeforeOta;
  b.run(EXPIRE);
  const afterOtaDropped = b.live() - idle;
  const out = b
    .run(
      `print(membench.STATE['max_read'], membench.STATE['reads'], membench.Broker.current.published)\nprint(membench.REPORTS[-1].decode() if membench.REPORTS else '{}')`,
    )
    .trim()
    .split('\n');
  const [maxRead, reads, published] = out[0]!.split(' ').map(Number) as [number, number, number];
  const otaReport = JSON.parse(out[1]!) as OtaFigures['report'];
  const bound = (list: Step[]) => (list.length ? Math.max(...list.map((s) => s.liveBefore + s.allocated)) - idle : 0);
  const measured = [...publishes, ...commands];
  const largest = measured.reduce((a, s) => (s.largest > a.largest ? s : a), measured[0] ?? ota);
  return {
    port,
    retained,
    idleAbove: idle - base,
    livePeakAboveIdle: Math.max(...[...measured, trigger, report].map((s) => s.liveAfter)) - idle,
    publishPeakAboveIdle: bound(publishes),
    commandPeakAboveIdle: bound(commands),
    otaPeakAboveIdle: bound([trigger]),
    commandsLoaded,
    otaLoaded,
    afterCommandsDropped,
    afterOtaDropped,
    largestAllocation: Math.max(largest.largest, ota.largest),
    largestWhere: ota.largest > largest.largest ? 'ota' : largest.label,
    published,
    ota: {
      maxRead,
      reads,
      largestAllocation: ota.largest,
      allocatedPerRead: reads ? Math.round(ota.allocated / reads) : 0,
      retainedAfter: afterOtaDropped - afterCommandsDropped,
      report: otaReport,
    },
  };
}

/** What a transfer must not exceed ([O-4]: the device streams, CHUNK bytes at a time). */
export const OTA_CHUNK_TARGET = 512;
/** A 512-byte chunk as a bytes object: 512 + 1 terminator, rounded up to 16-byte GC blocks. */
export const OTA_ALLOCATION_TARGET = 528;

/** The promises a transfer keeps, as problems found (empty when kept). */
export function otaProblems(ota: Pick<OtaFigures, 'maxRead' | 'largestAllocation'>): string[] {
  const problems: string[] = [];
  if (ota.maxRead > OTA_CHUNK_TARGET) problems.push(`it read ${ota.maxRead} bytes at once (at most ${OTA_CHUNK_TARGET})`);
  if (ota.largestAllocation > OTA_ALLOCATION_TARGET)
    problems.push(`it allocated ${ota.largestAllocation} bytes in one block (at most ${OTA_ALLOCATION_TARGET})`);
  return problems;
}

/**
 * Measures a pull transfer of `bytes` by any Python receiver (`receiver` is code run with `host`,
 * `port_number` in scope), the same way the budget scenario measures the library's.
 */
export async function measureTransfer(port: Port, bytes: number, receiver: string): Promise<Pick<OtaFigures, 'maxRead' | 'largestAllocation' | 'reads'>> {
  const b = await board(port);
  b.run(`membench.STATE['pull_size'] = ${bytes}\nhost, port_number = '${TRIGGER_HOST}', 8266\ngc.collect()`);
  const s = step(b, 'ota', receiver, 'transfer-start', 'transfer-end');
  const [maxRead, reads] = b.run(`print(membench.STATE['max_read'], membench.STATE['reads'])`).trim().split(' ').map(Number) as [number, number];
  return { maxRead, reads, largestAllocation: s.largest };
}
