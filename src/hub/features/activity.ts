/** The activity log as a feature: devices coming, going and changing state, for whoever watches the hub's log (activity-log.ts). */
import { logActivity } from '../activity-log.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';

export class ActivityFeature implements Feature {
  readonly name = 'activity';

  constructor(private readonly ctx: HubContext) {}

  start(scope: FeatureScope): void {
    scope.defer(logActivity(this.ctx.bus, scope.log));
  }
}
