/**
 * Property: whatever several devices publish (valid and invalid, adversarial ids, odd text, binary,
 * long levels, removals), whatever HomeKit writes, and however often the hub restarts or is killed,
 * the hub keeps running, starts again on its data dir, serves HomeKit a valid `/accessories`, and
 * keeps the AIDs and IIDs of devices that were not removed.
 *
 * Replay a failure with the seed and path it prints:
 *   MQTTKIT_PROP_SEED=<seed> MQTTKIT_PROP_PATH=<path> node --test dist/test/property/messages.test.js
 * More runs: MQTTKIT_PROP_RUNS=100. Leave out patterns of known findings while hunting for the next
 * ones: MQTTKIT_PROP_AVOID=8,9 (keys in test/property/README.md). Watch it: MQTTKIT_PROP_VERBOSE=1.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { disposeTemplate, InvariantFailure, runScenario } from './hub-session.js';
import { avoidFromEnv, describeScenario, materialize, type ScenarioSpec, scenarioArbitrary } from './scenario.js';

const env = process.env;
const numRuns = Number(env.MQTTKIT_PROP_RUNS ?? 10);
/** Bounds the whole check, shrinking included, so `npm test` stays within its budget. */
const timeLimitMs = Number(env.MQTTKIT_PROP_TIME_LIMIT_MS ?? 60_000);

describe('random device traffic, HomeKit writes and restarts', { timeout: timeLimitMs + 120_000 }, () => {
  after(() => disposeTemplate());
  it('keep the hub running, restartable, HAP-valid, and every surviving device on its AID/IIDs', async (t) => {
    const avoid = avoidFromEnv();
    const verbose = env.MQTTKIT_PROP_VERBOSE === '1';
    let runs = 0;
    const property = fc.asyncProperty(scenarioArbitrary, async (spec: ScenarioSpec) => {
      runs++;
      const scenario = materialize(spec, avoid);
      if (verbose) process.stdout.write(`# run ${runs}\n${describeScenario(scenario).replace(/^/gm, '# ')}\n`);
      const started = performance.now();
      try {
        await runScenario(scenario, { verbose, avoid });
      } finally {
        if (env.MQTTKIT_PROP_PROGRESS) process.stderr.write(`run ${runs}: ${scenario.steps.length} steps, ${Math.round(performance.now() - started)} ms\n`);
      }
    });
    const details = await fc.check(property, {
      numRuns,
      interruptAfterTimeLimit: timeLimitMs,
      ...(env.MQTTKIT_PROP_SEED ? { seed: Number(env.MQTTKIT_PROP_SEED) } : {}),
      ...(env.MQTTKIT_PROP_PATH ? { path: env.MQTTKIT_PROP_PATH } : {}),
    });
    if (details.failed) {
      const [spec] = details.counterexample!;
      const scenario = materialize(spec, avoid);
      // Steps after the one that broke an invariant never ran: leave them out of the report.
      const failedAt = details.errorInstance instanceof InvariantFailure ? details.errorInstance.step : scenario.steps.length;
      const finalRestart = failedAt > scenario.steps.length;
      scenario.steps = scenario.steps.slice(0, failedAt);
      const replay = `MQTTKIT_PROP_SEED=${details.seed} MQTTKIT_PROP_PATH=${details.counterexamplePath}${avoid.size ? ` MQTTKIT_PROP_AVOID=${[...avoid].join(',')}` : ''} node --test dist/test/property/messages.test.js`;
      assert.fail(
        [
          `property failed after ${details.numRuns} run(s) and ${details.numShrinks} shrink(s)${details.interrupted ? ' (shrinking cut short by the time limit)' : ''}.`,
          '',
          'Shrunk scenario, one message per line:',
          describeScenario(scenario),
          ...(finalRestart ? [`step ${failedAt}: (final) restart the hub (SIGTERM) on the same data dir`] : []),
          '',
          'What broke:',
          details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance),
          '',
          `Replay: ${replay}`,
        ].join('\n'),
      );
    }
    assert.ok(runs > 0, 'at least one scenario ran');
    t.diagnostic(`${details.numRuns} scenario(s) passed (seed ${details.seed})${details.interrupted ? ', stopped early by the time limit' : ''}`);
  });
});
