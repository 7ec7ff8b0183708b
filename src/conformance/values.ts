/** Metadata [P-11], values [P-4] [P-6] [P-9], and a HomeKit write with its confirmation [P-14]. */
import { type CharacteristicSpec, coerceValue, formatValue, type HapValue } from '../core/coerce.js';
import { parseTopic, type ServiceAddress, setTopic, valueTopic } from '../core/topic.js';
import { HapCatalog } from '../homekit/catalog.js';
import type { Context } from './context.js';

const catalog = new HapCatalog();
/** [P-14] the hub's default confirmation timeout (--confirm-timeout). */
const CONFIRM_MS = 10_000;

export async function checkMetadata(ctx: Context): Promise<void> {
  const problems: string[] = [];
  const seen: string[] = [];
  for (const field of ['name', 'model', 'firmware']) {
    const topic = `HomeKit/${ctx.id}/$${field}`;
    const retained = await ctx.probe.retainedNow(topic, 1000);
    const any =
      retained ??
      ctx.probe
        .on(topic)
        .filter((m) => m.text !== '')
        .at(-1);
    if (!any) problems.push(`$${field} never published`);
    else if (!retained) problems.push(`$${field} is not retained`);
    else if ([...retained.text].length > 64) problems.push(`$${field} is ${[...retained.text].length} characters, over 64`);
    else seen.push(`$${field}=${retained.text}`);
  }
  ctx.results.check(
    'P-11',
    problems.length ? `${problems.join('; ')} (publish them retained after connecting, before $state online)` : undefined,
    seen.join(', '),
  );
}

interface ValueSeen {
  address: ServiceAddress;
  characteristic: string;
  spec: CharacteristicSpec;
  value: HapValue;
  text: string;
}

/** A value message parsed and checked as the hub does: the problem, or the value. */
function readValue(topic: string, text: string): { problem: string } | ValueSeen | undefined {
  const parsed = parseTopic(topic);
  if (!parsed.ok) return { problem: parsed.error };
  if (parsed.value.kind !== 'value' || text === '') return undefined;
  const { service, index, characteristic } = parsed.value;
  const serviceSpec = catalog.service(service);
  if (!serviceSpec.ok) return { problem: `${topic}: ${serviceSpec.error}` };
  const spec = catalog.characteristic(serviceSpec.value, characteristic);
  if (!spec.ok) return { problem: `${topic}: ${spec.error}` };
  const value = coerceValue(spec.value, text);
  if (!value.ok) return { problem: `${topic} '${text.slice(0, 40)}': ${value.error}` };
  return { address: { service, index }, characteristic, spec: spec.value, value: value.value, text };
}

const label = (a: ServiceAddress) => (a.index ? `${a.service}/${a.index}` : a.service);

/** Every value the device published during the run (read at the end, after its reboots). */
export async function checkValues(ctx: Context): Promise<void> {
  const problems = new Set<string>();
  const services = new Set<string>();
  for (const m of ctx.probe.log) {
    if (m.topic === `HomeKit/${ctx.id}/$error` && m.text !== '') problems.add(`the hub refused: ${m.text.slice(0, 200)}`);
    if (!m.topic.startsWith(`HomeKit/${ctx.id}/`) || m.topic.endsWith('/set') || m.topic.includes('/$')) continue;
    const read = readValue(m.topic, m.text);
    if (read && 'problem' in read) problems.add(read.problem);
    else if (read) services.add(label(read.address));
  }
  const known = (await ctx.devices.loadDevices()).find((d) => d.id === ctx.id)?.services.map(label) ?? [];
  const silent = known.filter((s) => !services.has(s));
  if (services.size === 0) problems.add("no value published during the run: publish each service's values after connecting");
  else if (silent.length)
    problems.add(`no value seen during the run for ${silent.join(', ')} (the hub knows these services): publish every service's values after connecting`);
  ctx.results.check('P-9', problems.size ? [...problems].slice(0, 3).join('; ') : undefined, [...services].join(', '));
}

/** A value the characteristic takes that differs from `current`. */
function otherValue(spec: CharacteristicSpec, current: HapValue): HapValue | undefined {
  if (spec.format === 'bool') return !current;
  if (spec.validValues?.length) return spec.validValues.find((v) => v !== current);
  if (typeof current !== 'number') return undefined;
  const min = spec.minValue ?? 0;
  const max = spec.maxValue ?? min + 1;
  return current !== min ? min : max;
}

/** [P-14] Writes one writable characteristic the way HomeKit does (`/set`, QoS 1) and waits for the confirmation. */
export async function checkWrite(ctx: Context): Promise<void> {
  const { probe, id, results } = ctx;
  const latest = new Map<string, ValueSeen>();
  // What the hub knows first (a device may have published its values before the checker listened), then what was seen.
  for (const record of (await ctx.devices.loadDevices()).find((d) => d.id === id)?.services ?? []) {
    for (const [characteristic, value] of Object.entries(record.values)) {
      const read = readValue(valueTopic(id, record, characteristic), formatValue(value));
      if (read && !('problem' in read) && read.spec.perms.includes('pw')) latest.set(`${label(record)}/${characteristic}`, read);
    }
  }
  for (const m of probe.log) {
    const read = m.topic.startsWith(`HomeKit/${id}/`) && !m.topic.includes('/$') ? readValue(m.topic, m.text) : undefined;
    if (read && !('problem' in read) && read.spec.perms.includes('pw')) latest.set(`${label(read.address)}/${read.characteristic}`, read);
  }
  const target = [...latest.values()].find((v) => otherValue(v.spec, v.value) !== undefined);
  if (!target) return results.skip('P-14', 'not tested: the device published no writable characteristic');
  const wanted = otherValue(target.spec, target.value)!;
  const state = valueTopic(id, target.address, target.characteristic);
  const from = probe.mark;
  ctx.say(`writing ${state} = ${formatValue(wanted)} (as HomeKit would)`);
  await probe.publish(setTopic(id, target.address, target.characteristic), formatValue(wanted));
  const same = (text: string) => {
    const value = coerceValue(target.spec, text);
    return value.ok && value.value === wanted;
  };
  const confirmed = await probe.waitFor((m) => m.topic === state && same(m.text), CONFIRM_MS, from);
  if (confirmed) {
    results.pass('P-14', `${label(target.address)}/${target.characteristic} ${target.text} -> ${confirmed.text}`);
    // Put the light (or lock, or relay) back as the user left it; a device that does not confirm is left alone.
    const back = probe.mark;
    ctx.say(`writing ${state} = ${formatValue(target.value)} (back as it was)`);
    await probe.publish(setTopic(id, target.address, target.characteristic), formatValue(target.value));
    await probe.waitFor((m) => m.topic === state && !same(m.text), CONFIRM_MS, back);
    return;
  }
  const other = probe.on(state, from).at(-1);
  results.fail(
    'P-14',
    `wrote ${formatValue(wanted)} to ${state}/set; ${other ? `the device published '${other.text.slice(0, 40)}' instead` : `no confirmation within ${CONFIRM_MS / 1000} s`}: act on the /set, then publish the new value to ${state}`,
  );
}
