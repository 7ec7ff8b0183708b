/**
 * The install lists of the device library, read from their one home, device/micropython/ports.json:
 * `{"<package>": ["mqttkit/…", …]}`. A package is named `<board>` or `<board>_<role>`, where `<board>`
 * names the stubs it is type-checked against (device/stubs/<board>: esp32, esp8266, generic — a board
 * without Wi-Fi) and the role says what the board does (docs/device.md, "Install on a board"):
 * - `esp32`, `esp8266`: a Wi-Fi device (and an ESP-NOW peripheral; an ESP-NOW gateway on esp32);
 * - `generic_link_host`: a board without Wi-Fi behind a serial bridge (mqttkit.link.Host);
 * - `<esp>_link_bridge`: the ESP wired to it (mqttkit.link.Bridge).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIBRARY = fileURLToPath(new URL('../../../device/micropython', import.meta.url));

export type Board = 'esp32' | 'esp8266' | 'generic';
export const BOARDS: readonly Board[] = ['esp32', 'esp8266', 'generic'];
/** The Wi-Fi device packages: one per ESP port, each a full Device (OTA, commands, its chip module). */
export const WIFI_PORTS = ['esp32', 'esp8266'] as const;

export function packages(): Record<string, string[]> {
  return JSON.parse(readFileSync(join(LIBRARY, 'ports.json'), 'utf8')) as Record<string, string[]>;
}

/** The stubs a package is checked against: the part of its name before the first `_`. */
export function boardOf(name: string): Board {
  const board = name.split('_')[0] as Board;
  if (!BOARDS.includes(board)) throw new Error(`ports.json: '${name}' does not start with a board of device/stubs (${BOARDS.join(', ')})`);
  return board;
}

/** Every file some package of `board` installs: what pyright checks against that board's stubs. */
export function filesForBoard(board: Board): string[] {
  return [
    ...new Set(
      Object.entries(packages())
        .filter(([name]) => boardOf(name) === board)
        .flatMap(([, files]) => files),
    ),
  ];
}
