/**
 * The device library type-checked against the real board APIs (issue 11): pyright runs once per board
 * over the files ports.json's packages install on that board (esp32: a Wi-Fi device, an ESP-NOW gateway,
 * a serial bridge; esp8266: a Wi-Fi device, an ESP-NOW peripheral, a serial bridge; generic: a serial
 * link's host without Wi-Fi), against the MicroPython 1.27 stubs in device/stubs/<board> (see
 * device/stubs/README.md). Zero errors per port; fixtures prove the stubs, not
 * CPython's library, decide (a call that exists in CPython but not on the board fails).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BOARDS, type Board, boardOf, filesForBoard, packages } from '../helpers/device-packages.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LIBRARY = join(ROOT, 'device/micropython');
const STUBS = join(ROOT, 'device/stubs');
const FIXTURES = join(ROOT, 'test/device/board-types');
/** The ESP ports, whose stubs the fixtures below probe (generic is checked for the library alone). */
const PORTS = ['esp32', 'esp8266'] as const;
type Port = Board;

/** pyright's own typeshed files each port's stdlib links to: the language itself, no library module. */
const CORE = ['builtins.pyi', 'typing.pyi', 'typing_extensions.pyi', 'types.pyi', '_typeshed', '_collections_abc.pyi', 'abc.pyi', 'collections'];

interface Diagnostic {
  file: string;
  severity: 'error' | 'warning' | 'information';
  message: string;
  rule?: string;
  range: { start: { line: number; character: number } };
}

const pyright = join(dirname(createRequire(import.meta.url).resolve('pyright/package.json')), 'index.js');

/** The board stubs we wrote for a port (its stdlib without pyright's core links). */
function ownStubs(port: Port): string[] {
  const dir = join(STUBS, port, 'stdlib');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.pyi') && !CORE.includes(name))
    .map((name) => join(dir, name));
}

function portFiles(port: Port): string[] {
  const files = filesForBoard(port);
  assert.ok(files.length > 0, `ports.json lists no package for ${port}`);
  return files.map((file) => join(LIBRARY, file));
}

async function check(port: Port, files: string[]): Promise<Diagnostic[]> {
  // pyright exits 1 when it finds errors; its JSON report is on stdout either way.
  const run = await promisify(execFile)(process.execPath, [pyright, '--outputjson', '-p', join(STUBS, port), ...files], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: { stdout?: string; stderr?: string }) => {
    if (!error.stdout) throw new Error(`pyright did not run for ${port}: ${error.stderr ?? error}`);
    return { stdout: error.stdout };
  });
  return (JSON.parse(run.stdout) as { generalDiagnostics: Diagnostic[] }).generalDiagnostics.filter((d) => d.severity === 'error');
}

const show = (ds: Diagnostic[]) =>
  ds
    .map((d) => `  ${relative(ROOT, d.file)}:${d.range.start.line + 1}:${d.range.start.character + 1} [${d.rule ?? '-'}] ${d.message.split('\n').join(' / ')}`)
    .join('\n');

describe('the device library against the board APIs (pyright, MicroPython 1.27 stubs)', () => {
  const results = new Map<Port, Diagnostic[]>();
  const inFile = (port: Port, file: string) => (results.get(port) ?? []).filter((d) => d.file === join(FIXTURES, file));

  before(async () => {
    const fixtures = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.py'))
      .map((f) => join(FIXTURES, f));
    // One pyright run per board (about 2 s each): the library, our stubs and the fixtures together.
    for (const port of BOARDS) results.set(port, await check(port, [...portFiles(port), ...ownStubs(port), ...(port === 'generic' ? [] : fixtures)]));
  });

  it("every package of ports.json names its board's stubs (device/stubs/<board>)", () => {
    for (const name of Object.keys(packages())) assert.ok(existsSync(join(STUBS, boardOf(name), 'pyrightconfig.json')), name);
    assert.throws(() => boardOf('avr_link_host'), /does not start with a board/);
  });

  for (const port of BOARDS) {
    it(`${port}: the files ports.json installs on it have zero errors`, () => {
      const errors = (results.get(port) ?? []).filter((d) => d.file.startsWith(LIBRARY));
      assert.equal(errors.length, 0, `${errors.length} error(s) against the ${port} API:\n${show(errors)}`);
    });

    it(`${port}: the stubs themselves are valid`, () => {
      const errors = (results.get(port) ?? []).filter((d) => d.file.startsWith(STUBS));
      assert.equal(errors.length, 0, show(errors));
    });
  }

  it('machine.WDT(timeout=…) passes on esp32 and fails on esp8266 (fixed watchdog)', () => {
    assert.deepEqual(inFile('esp32', 'watchdog_timeout.py'), []);
    const errors = inFile('esp8266', 'watchdog_timeout.py');
    assert.deepEqual(
      errors.map((d) => [d.range.start.line + 1, d.rule]),
      [[4, 'reportCallIssue']],
      show(errors),
    );
  });

  it('sock.getsockname() fails on both ports', () => {
    for (const port of PORTS) {
      const errors = inFile(port, 'getsockname.py');
      assert.deepEqual(
        errors.map((d) => [d.range.start.line + 1, d.rule]),
        [[5, 'reportAttributeAccessIssue']],
        `${port}:\n${show(errors)}`,
      );
    }
  });

  it('esp32.Partition exists on esp32 only', () => {
    assert.deepEqual(inFile('esp32', 'partition.py'), []);
    assert.deepEqual(
      inFile('esp8266', 'partition.py').map((d) => [d.range.start.line + 1, d.rule]),
      [[2, 'reportMissingImports']],
    );
  });

  it('espnow: the ESP32-only calls pass on esp32 and fail on esp8266 (its smaller API; an ESP-NOW peripheral runs on both)', () => {
    assert.deepEqual(inFile('esp32', 'espnow_esp32_only.py'), [], show(inFile('esp32', 'espnow_esp32_only.py')));
    const errors = inFile('esp8266', 'espnow_esp32_only.py');
    assert.deepEqual(
      errors.map((d) => [d.range.start.line + 1, d.rule]),
      [
        [4, 'reportAttributeAccessIssue'],
        [5, 'reportAttributeAccessIssue'],
        [6, 'reportCallIssue'],
        [7, 'reportCallIssue'],
        [8, 'reportAttributeAccessIssue'],
        [9, 'reportAttributeAccessIssue'],
      ],
      show(errors),
    );
  });

  it("CPython's library does not leak in: time.monotonic, os.environ and uuid fail on both ports", () => {
    for (const port of PORTS) {
      const errors = inFile(port, 'cpython_only.py');
      assert.deepEqual(
        errors.map((d) => [d.range.start.line + 1, d.rule]),
        [
          [4, 'reportMissingImports'],
          [6, 'reportAttributeAccessIssue'],
          [6, 'reportAttributeAccessIssue'],
        ],
        `${port}:\n${show(errors)}`,
      );
    }
  });

  it('what the library needs from a board passes on both ports', () => {
    for (const port of PORTS) assert.deepEqual(inFile(port, 'board_ok.py'), [], `${port}:\n${show(inFile(port, 'board_ok.py'))}`);
  });

  it('each stub cites the MicroPython 1.27 doc section it follows and has no catch-all', () => {
    const files = [
      ...readdirSync(join(STUBS, 'common')).map((f) => join(STUBS, 'common', f)),
      ...BOARDS.flatMap((p) => ownStubs(p).filter((f) => !lstatSync(f).isSymbolicLink())),
    ];
    assert.ok(files.length >= 20, `found ${files.length} stub files`);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      assert.match(
        text.split('\n').slice(0, 4).join('\n'),
        /https:\/\/docs\.micropython\.org\/en\/v1\.27\.0\/\S+\.html/,
        `${relative(ROOT, file)} cites no doc page`,
      );
      assert.doesNotMatch(text, /def __getattr__|^\w+\s*:\s*Any\s*$/m, `${relative(ROOT, file)} has a catch-all`);
    }
  });

  it("each port's core links resolve into pyright's bundled typeshed", () => {
    for (const port of BOARDS) {
      for (const name of CORE) {
        const link = join(STUBS, port, 'stdlib', name);
        assert.ok(existsSync(link), `${relative(ROOT, link)} is missing or dangles: pyright's typeshed moved? (npm install pyright)`);
        if (name !== 'collections') assert.match(realpathSync(link), /pyright[/\\]dist[/\\]typeshed-fallback[/\\]stdlib/);
      }
    }
  });
});
