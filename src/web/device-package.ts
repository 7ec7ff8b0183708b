/**
 * The device library as a package MicroPython's `mip` installs (`mpremote mip install
 * http://<hub>:8581/device/package.json`). What is served is decided once, at start, from
 * `device/micropython/ports.json` (`{"<port>": ["mqttkit/device.py", …]}`, paths relative to
 * `device/micropython`): a table from URL path to bytes. A request is a lookup in that table, never a
 * path joined from the URL, so no spelling of `..` can reach another file.
 */
import { lstatSync, readFileSync, realpathSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail, ok, type Result } from '../core/result.js';

/** `device/micropython` in the installed package (dist/src/web → the package root). */
export const DEVICE_LIBRARY = fileURLToPath(new URL('../../../device/micropython', import.meta.url));

/** Bounds on what ports.json may name: a handful of small modules, not a file server. */
const MAX_FILES = 200;
const MAX_FILE_BYTES = 256 * 1024;
const PORT_NAME = /^[a-z0-9_]{1,32}$/;
/** A relative path of plain segments: letters, digits, `_`, `-`, `.`; no `..`, no empty segment. */
const FILE_PATH = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9_][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_][A-Za-z0-9_.-]*){0,7}$/;

export interface DeviceLibrary {
  /** Port name → the files it installs (paths relative to device/micropython), as ports.json lists them. */
  ports: Record<string, string[]>;
  /** Every file some port installs, in the order first listed. */
  files: string[];
  /** The package's version (the hub's). */
  version: string;
  /** A file's bytes, by its path relative to device/micropython; only listed files are here. */
  bytes: ReadonlyMap<string, Buffer>;
}

/** Reads ports.json and every file it lists; refuses (by name) anything off the rules above. */
export function loadDeviceLibrary(root: string, version: string): Result<DeviceLibrary> {
  const list = join(root, 'ports.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(list, 'utf8'));
  } catch (error) {
    return fail(`cannot read ${list}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail(`${list}: expected {"<port>": ["mqttkit/…", …]}`);
  const ports: Record<string, string[]> = {};
  const files: string[] = [];
  const bytes = new Map<string, Buffer>();
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch (error) {
    return fail(`cannot read ${root}: ${(error as Error).message}`);
  }
  for (const [port, paths] of Object.entries(parsed)) {
    if (!PORT_NAME.test(port)) return fail(`${list}: '${port.slice(0, 40)}' is not a port name (lowercase letters, digits, _)`);
    if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string')) return fail(`${list}: ${port} must list file paths`);
    for (const path of paths as string[]) {
      if (!FILE_PATH.test(path)) return fail(`${list}: '${path.slice(0, 100)}' (${port}) is not a plain relative path`);
      if (bytes.has(path)) continue;
      if (files.length >= MAX_FILES) return fail(`${list}: more than ${MAX_FILES} files`);
      const file = join(root, path);
      try {
        // A listed name must be a regular file inside the library, not a link out of it.
        if (!lstatSync(file).isFile() || !realpathSync(file).startsWith(realRoot + sep)) return fail(`${list}: ${path} is not a file inside ${root}`);
        const content = readFileSync(file);
        if (content.length > MAX_FILE_BYTES) return fail(`${list}: ${path} is over ${MAX_FILE_BYTES / 1024} KiB`);
        bytes.set(path, content);
        files.push(path);
      } catch (error) {
        return fail(`${list}: cannot read ${path}: ${(error as Error).message}`);
      }
    }
    ports[port] = [...new Set(paths as string[])];
  }
  if (Object.keys(ports).length === 0) return fail(`${list} names no port`);
  return ok({ ports, files, version, bytes });
}

export interface Served {
  type: string;
  body: Buffer | string;
}

/**
 * What `GET /device/<path>` answers, or undefined (404). `base` is where the package lives as the
 * client reached it (`http://<Host>/device/`): mip resolves relative URLs, but mpremote's own mip
 * (on the PC) does not in every release, so the package lists absolute URLs.
 *
 * - `package.json`: every file any port installs (each port imports only what it uses);
 * - `<port>/package.json`: the files ports.json lists for that port;
 * - `<file>`: a listed file, byte for byte.
 */
export function servedPath(library: DeviceLibrary, path: string, base: string): Served | undefined {
  const pkg = (files: string[]) => ({
    type: 'application/json; charset=utf-8',
    body: JSON.stringify({ urls: files.map((f) => [f, `${base}${f}`]), version: library.version }),
  });
  if (path === 'package.json') return pkg(library.files);
  const port = /^([a-z0-9_]{1,32})\/package\.json$/.exec(path)?.[1];
  if (port !== undefined) return Object.hasOwn(library.ports, port) ? pkg(library.ports[port]!) : undefined;
  const content = library.bytes.get(path);
  if (!content) return undefined;
  return { type: path.endsWith('.py') ? 'text/x-python; charset=utf-8' : 'application/octet-stream', body: content };
}
