/**
 * Checks over everything the device published during the run, with no message of their own: payload
 * size and encoding [P-3] [P-17], indexed or unindexed services [P-8], and the app version [P-22].
 */
import { parseTopic } from '../core/topic.js';
import type { Context } from './context.js';

/** [P-17] the largest payload the hub takes on HomeKit/… topics. */
const MAX_PAYLOAD = 1024;

export async function checkTraffic(ctx: Context): Promise<void> {
  const { id, probe, results } = ctx;
  // What the device said: the hub's own topics under HomeKit/<id>/ (`/set`, `$error`) are not its words.
  const said = probe.log.filter((m) => m.topic.startsWith(`HomeKit/${id}/`) && !m.topic.endsWith('/set') && m.topic !== `HomeKit/${id}/$error`);

  const big = said.find((m) => m.bytes > MAX_PAYLOAD);
  const binary = said.find((m) => !m.utf8);
  results.check(
    'P-3',
    big
      ? `${big.topic} carried ${big.bytes} bytes, over ${MAX_PAYLOAD}: the hub refuses it`
      : binary
        ? `${binary.topic} carried bytes that are not UTF-8 text`
        : undefined,
    `${said.length} messages, all UTF-8 of at most ${MAX_PAYLOAD} bytes`,
  );

  // [P-8] index 0 = the unindexed service; the hub's record counts too (values published before the run).
  const indexes = new Map<string, Set<number>>();
  const note = (service: string, index: number) => indexes.set(service, (indexes.get(service) ?? new Set()).add(index));
  for (const m of said) {
    const parsed = parseTopic(m.topic);
    if (parsed.ok && parsed.value.kind === 'value') note(parsed.value.service, parsed.value.index);
  }
  for (const record of (await ctx.devices.loadDevices()).find((d) => d.id === id)?.services ?? []) note(record.service, record.index);
  const mixed = [...indexes].find(([, set]) => set.has(0) && set.size > 1);
  results.check(
    'P-8',
    mixed
      ? `${mixed[0]} is published both unindexed (${mixed[0]}/<Characteristic>) and indexed (${[...mixed[1]]
          .filter((i) => i > 0)
          .map((i) => `${mixed[0]}/${i}`)
          .join(', ')}): use indexes for every service of a type when there are several`
      : undefined,
    [...indexes].map(([service, set]) => `${service}${[...set].some((i) => i > 0) ? ` ×${set.size}` : ''}`).join(', '),
  );

  // [P-22] `app` in getversion and the $firmware HomeKit shows are one version.
  const app = ctx.facts.version?.app;
  const firmware = probe
    .on(`HomeKit/${id}/$firmware`)
    .filter((m) => m.text !== '')
    .at(-1)?.text;
  if (typeof app !== 'string' || firmware === undefined)
    results.skip('P-22', `not tested: ${typeof app !== 'string' ? 'getversion gives no "app"' : 'no $firmware seen'}`);
  else
    results.check(
      'P-22',
      app === firmware
        ? undefined
        : `getversion says "app": "${app.slice(0, 40)}" but the device publishes $firmware '${firmware.slice(0, 40)}': both are the application's version`,
      app,
    );
}
