/** Value history as a feature (`--no-history`: nothing is recorded; what was recorded stays readable). */
import { HistoryRecorder } from '../../store/history-recorder.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';

export class HistoryFeature implements Feature {
  readonly name = 'history';

  constructor(private readonly ctx: HubContext) {}

  start(scope: FeatureScope): void {
    const recorder = new HistoryRecorder(this.ctx.bus, this.ctx.history, this.ctx.options.historyRetentionMs, this.ctx.wrote, (message) =>
      scope.log.warn(message),
    );
    recorder.start();
    // Its last batch is written at stop.
    scope.defer(() => recorder.stop());
  }
}
