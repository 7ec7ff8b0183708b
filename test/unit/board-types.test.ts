/**
 * The device library type-checked against the real board APIs (issue 11): pyright runs once per port
 * over the files ports.json installs on that port, against the MicroPython 1.27 stubs in
 * device/stubs/<port> (see device/stubs/README.md). Zero errors per port; fixtures prove the stubs, not
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

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LIBRARY = join(ROOT, 'device/micropython');
const STUBS = join(ROOT, 'device/stubs');
const FIXTURES = join(ROOT, 'test/device/board-types');
const PORTS = ['esp32', 'esp8266'] as const;
type Port = (typeof PORTS)[number];

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
  const ports = JSON.parse(readFileSync(join(LIBRARY, 'ports.json'), 'utf8')) as Record<string, string[]>;
  assert.ok(Array.isArray(ports[port]) && ports[port].length > 0, `ports.json lists no files for ${port}`);
  return ports[port].map((file) => join(LIBRARY, file));
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
    // One pyright run per port (about 2 s each): the library, our stubs and the fixtures together.
    for (const port of PORTS) results.set(port, await check(port, [...portFiles(port), ...ownStubs(port), ...fixtures]));
  });

  for (const port of PORTS) {
    it(`${port}: the files ports.json installs have zero errors`, () => {
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
      ...PORTS.flatMap((p) => ownStubs(p).filter((f) => !lstatSync(f).isSymbolicLink())),
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
    for (const port of PORTS) {
      for (const name of CORE) {
        const link = join(STUBS, port, 'stdlib', name);
        assert.ok(existsSync(link), `${relative(ROOT, link)} is missing or dangles: pyright's typeshed moved? (npm install pyright)`);
        if (name !== 'collections') assert.match(realpathSync(link), /pyright[/\\]dist[/\\]typeshed-fallback[/\\]stdlib/);
      }
    }
  });
});
