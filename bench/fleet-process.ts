/** The benchmark's side of fleet-child.ts: a simulated fleet in a child process. */
import { type ChildProcess, fork } from 'node:child_process';
import type { FleetOptions } from '../device/simulator/fleet.js';
import type { FleetAnswer, FleetRequest } from './fleet-child.js';

export class FleetProcess {
  private constructor(private readonly child: ChildProcess) {}

  static async fork(): Promise<FleetProcess> {
    const child = fork(new URL('./fleet-child.js', import.meta.url), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return new FleetProcess(child);
  }

  /** Connects the fleet; the devices that could not connect. */
  async start(options: FleetOptions): Promise<Array<{ id: string; error: string }>> {
    const answer = await this.#ask({ start: options });
    return typeof answer === 'object' && 'started' in answer ? answer.started : [];
  }

  /** Messages the fleet published so far. */
  async published(): Promise<number> {
    const answer = await this.#ask('count');
    return typeof answer === 'object' && 'published' in answer ? answer.published : 0;
  }

  async stop(): Promise<void> {
    if (!this.child.connected) return;
    await this.#ask('stop');
    await new Promise((resolve) => (this.child.exitCode !== null ? resolve(undefined) : this.child.once('exit', resolve)));
  }

  #ask(request: FleetRequest): Promise<FleetAnswer> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error('the fleet process ended'));
      this.child.once('exit', onExit);
      this.child.once('message', (answer: FleetAnswer) => {
        this.child.off('exit', onExit);
        resolve(answer);
      });
      this.child.send(request);
    });
  }
}
