/**
 * The serial link's wire on a PC (issue 16): two pseudo-terminals joined by test/device/link_relay.py,
 * which takes `cut`, `mend`, `noise <seed>`, `clean`, `pace <baud>` on stdin. A Host runs on one end, a
 * Bridge on the other (test/device/link_host.py, link_bridge.py).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './hub-process.js';

export const DEVICE_SCRIPTS = fileURLToPath(new URL('../../../test/device/', import.meta.url));

export class Wire {
  child!: ChildProcess;
  paths!: { host: string; bridge: string };
  private out = '';

  async start(python: string) {
    this.child = spawn(python, ['-u', join(DEVICE_SCRIPTS, 'link_relay.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.out += d.toString();
    });
    this.paths = await eventually(
      () => {
        const first = this.out.split('\n')[0];
        return first && this.out.includes('\n') ? (JSON.parse(first) as { host: string; bridge: string }) : undefined;
      },
      5000,
      'the relay',
    );
  }

  /** Sends a command and resolves with the relay's counts once it is done. */
  async say(command: string): Promise<Record<string, number>> {
    const before = this.out.length;
    this.child.stdin!.write(`${command}\n`);
    const line = await eventually(
      () =>
        this.out
          .slice(before)
          .split('\n')
          .find((l) => l.includes('"done"')),
      5000,
      `the relay's ${command}`,
    );
    return (JSON.parse(line) as { counts: Record<string, number> }).counts;
  }

  async stop() {
    if (this.child && this.child.exitCode === null) {
      this.child.kill('SIGKILL');
      await new Promise((r) => this.child.once('exit', r));
    }
  }
}
