/**
 * The OTA commands a device answers on cmnd/<id>/OTA (docs/ota.md §3), in one typed table: the hub's
 * sender (request-id.ts: which Log line is which answer) and the docs' table (checked by a unit test)
 * both come from here. Adding a command: a row here and a row in docs/ota.md §3.
 */

export interface OtaCommand {
  /** `json`: the answer is a JSON object (found by its shape, [O-12]); `text`: one line of text. */
  readonly answer: 'json' | 'text';
  /**
   * [O-12] The documented fields that mark a JSON answer as this command's (a device may log JSON of
   * its own at any time); none: any JSON object (`hashes`: its keys are paths; `stats`: [O-22]).
   */
  readonly fields?: readonly string[];
}

export const OTA_COMMANDS = {
  open: { answer: 'text' },
  hashes: { answer: 'json' },
  discard: { answer: 'json', fields: ['discarded'] },
  commit: { answer: 'json', fields: ['committed'] },
  reboot: { answer: 'text' },
  getversion: { answer: 'json', fields: ['firmware', 'app', 'library', 'platform', 'python', 'ota', 'rid', 'partition', 'hashes'] },
  partitions: { answer: 'json', fields: ['count', 'running'] },
  keepversion: { answer: 'text' },
  stats: { answer: 'json' },
  msg_reboot: { answer: 'text' },
  msg_exception: { answer: 'text' },
  msg_rm: { answer: 'text' },
} as const satisfies Record<string, OtaCommand>;

export type OtaCommandName = keyof typeof OTA_COMMANDS;

/** The table's entry for a command name, if it is one of the documented commands (a device may have its own). */
export function otaCommand(name: string): OtaCommand | undefined {
  return Object.hasOwn(OTA_COMMANDS, name) ? (OTA_COMMANDS as Record<string, OtaCommand>)[name] : undefined;
}
