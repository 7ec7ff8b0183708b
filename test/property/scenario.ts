/**
 * Random scenarios for the hub: several devices (some with adversarial ids) publishing valid and
 * invalid messages, HomeKit-side writes, and hub restarts. A scenario is generated as small abstract
 * choices (so fast-check shrinks it well) and turned into concrete MQTT messages by `materialize`,
 * which is also what a failing case prints: one message per line.
 */
import fc from 'fast-check';
import { Characteristic, Service } from 'hap-nodejs';
import { show } from '../helpers/hap-invariants.js';

/** Device ids: ordinary ones, prototype keys, one character, 64 characters, case twins, topic roots. */
export const DEVICE_POOL = [
  'esp8266_12345678',
  'relay-4ch',
  'Lamp',
  'LAMP',
  'x',
  'a'.repeat(64),
  '__proto__',
  'constructor',
  'toString',
  'HomeKit',
  'OTA',
  'stat',
  '0',
  '-',
  '_x',
] as const;

/** Ids the issue reserves (finding 6): after the fix their CONNECT is refused; the test accepts either. */
export const RESERVED_IDS = new Set(['HomeKit', 'OTA', 'stat', 'tele', 'cmnd']);

/**
 * May the hub refuse this id at its first CONNECT? Reserved ids, and one-character ids (HomeKit
 * rejects a one-character SerialNumber, so a fix may refuse them). Every other id of the protocol's
 * grammar must be accepted.
 */
export function mayBeRefused(id: string): boolean {
  return RESERVED_IDS.has(id) || id.length === 1;
}

export const SERVICES = [
  'Switch',
  'Outlet',
  'Lightbulb',
  'TemperatureSensor',
  'HumiditySensor',
  'ContactSensor',
  'MotionSensor',
  'GarageDoorOpener',
  'Thermostat',
  'WindowCovering',
  'Fanv2',
  'StatelessProgrammableSwitch',
  'Battery',
  'LightSensor',
  'AirQualitySensor',
  'Valve',
  'SecuritySystem',
  'LockMechanism',
  'Television',
  'CarbonDioxideSensor',
] as const;

/** Names that are not publishable services: misspelt, reserved by HAP, binary-only, long. */
const ODD_SERVICES = ['Swtich', 'switch', 'Lamp', 'AccessoryInformation', 'ProtocolInformation', 'CameraRTPStreamManagement', 'Switch2', 'S'.repeat(3000)];
/** Characteristic names that belong to no service above, or to another one, or are misspelt. */
const ODD_CHARACTERISTICS = [
  'Onn',
  'on',
  'CurrentTemperature',
  'Brightness',
  'Identify',
  'FirmwareRevision',
  'PM2_5Density',
  'C'.repeat(3000),
  'ConfiguredName',
  'Name',
];

interface Props {
  format: string;
  perms: string[];
  minValue?: number;
  maxValue?: number;
  minStep?: number;
  validValues?: number[];
}

const characteristicNames = new Map<string, string>();
for (const [name, value] of Object.entries(Characteristic)) {
  const uuid = (value as { UUID?: unknown }).UUID;
  if (typeof uuid === 'string' && !characteristicNames.has(uuid)) characteristicNames.set(uuid, name);
}

/** Characteristics (required and optional) of each service, by HAP-NodeJS name, with their props. */
const CATALOG = new Map<string, Array<{ name: string; props: Props }>>();
for (const service of SERVICES) {
  const type = (Service as unknown as Record<string, new (name: string) => InstanceType<typeof Service>>)[service]!;
  const probe = new type('Probe');
  const list = [...probe.characteristics, ...probe.optionalCharacteristics].map((c) => {
    const name = characteristicNames.get(c.UUID)!;
    return { name, props: { ...c.props, perms: [...c.props.perms] } as Props };
  });
  CATALOG.set(
    service,
    list.filter((c, i) => list.findIndex((d) => d.name === c.name) === i),
  );
}

export function characteristicsOf(service: string): Array<{ name: string; props: Props }> {
  return CATALOG.get(service) ?? [];
}

function propsOf(name: string): Props | undefined {
  const type = (Characteristic as unknown as Record<string, (new () => InstanceType<typeof Characteristic>) | undefined>)[name];
  if (typeof type !== 'function' || typeof (type as unknown as { UUID?: unknown }).UUID !== 'string') return undefined;
  const c = new type();
  return { ...c.props, perms: [...c.props.perms] } as Props;
}

// ---- the abstract scenario (what fast-check generates and shrinks) ----

type ValueSpec =
  | { v: 'valid'; frac: number }
  | { v: 'edge'; pick: number }
  | { v: 'outside'; pick: number }
  | { v: 'garbage'; pick: number }
  | { v: 'text'; text: string }
  | { v: 'binary'; bytes: number[] }
  | { v: 'long'; length: number };

type Body =
  | { b: 'value'; service: number | string; index: number | string; characteristic: number | string; value: ValueSpec }
  | { b: 'meta'; field: 'name' | 'model' | 'firmware' | 'manufacturer'; text: string }
  | { b: 'state'; text: string }
  | { b: 'raw'; pick: number; payload: string }
  | { b: 'cross'; to: number; body: Body }
  /** Many services of one type at once: indexes 1..count (the limit is 99 per device). */
  | { b: 'burst'; service: number; count: number };

interface MessageSpec {
  slot: number;
  body: Body;
  retain: boolean;
  /** Replaces the payload with these bytes (often not UTF-8). */
  binary: number[] | null;
}

type StepSpec =
  | { s: 'publish'; messages: MessageSpec[] }
  | { s: 'write'; slot: number; service: number; nth: number; characteristic: number; value: unknown }
  | { s: 'restart'; signal: 'SIGTERM' | 'SIGKILL' }
  | { s: 'reconnect'; slot: number; how: 'clean' | 'drop' };

export interface ScenarioSpec {
  devices: string[];
  steps: StepSpec[];
}

const RAW_TOPICS: Array<(id: string) => string> = [
  (id) => `HomeKit/${id}`,
  (id) => `HomeKit/${id}/`,
  (id) => `HomeKit/${id}//On`,
  (id) => `HomeKit/${id}/Switch/On/set`,
  (id) => `HomeKit/${id}/Switch/1/On/set`,
  (id) => `HomeKit/${id}/Switch/1/2/On`,
  (id) => `HomeKit/${id}/$state/x`,
  (id) => `HomeKit/${id}/$error`,
  (id) => `HomeKit/${id}/$foo`,
  (id) => `HomeKit/${id}/$`,
  (id) => `HomeKit/${id}/Switch`,
  (id) => `HomeKit/${id}/Switch/On/x/y/z`,
  (id) => `HomeKit/${id}/Swïtch/On`,
  (id) => `HomeKit/${id}/Switch/On `,
  (id) => `HomeKit/${id}/${'L'.repeat(20000)}/On`,
  (id) => `HomeKit/${id}/Switch/${'1'.repeat(5000)}/On`,
  (id) => `HomeKit/${id}/${'$'.repeat(3000)}`,
  (id) => `stat/${id}/RESULT`,
  (id) => `tele/${id}/LWT`,
  (id) => `${id}/OTA`,
  (id) => `HomeKit/${id}/Switch/1/On/set/set`,
];

/** Text a device might put in a name: markup, bidi and zero-width controls, emoji, astral letters, long. */
export const oddText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('Living room', "Bob's lamp", 'Lamp 2', 'Küche', 'Wohnzimmer-Licht', 'Ω', 'A', '1', 'ab') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '<b>Lamp</b>',
      '<script>alert(1)</script>',
      'Kitchen\u202egnp.exe',
      'Lamp\u200b',
      '\u200b\u200b',
      '\u2066Lamp\u2069',
      '  ',
      '💡 Lamp',
      'Lamp 💡',
      '𝐀'.repeat(33) + 'a',
      '𝐀'.repeat(40),
      'a'.repeat(64),
      'a'.repeat(65),
      'é'.repeat(64),
      'e\u0301'.repeat(40),
      'x\ny',
      'tab\there',
      '\ufeffLamp',
      'Bob\u2019s',
      'Lamp\u2019',
      '---',
      "''",
      '.',
      ' Lamp ',
      'ﷺ',
      '\u0600\u0601Lamp',
      '\ud800',
      'Lamp\u00ad',
      '%s%n%x',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4shell-style name, literally
      '${jndi:ldap://x}',
      '"quoted"',
      'back\\slash',
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
);

const STATE_TEXTS = [
  'online',
  'offline',
  'sleeping',
  'sleeping 3600',
  'sleeping 0',
  'sleeping -5',
  'sleeping 1e9',
  'sleeping 3600 x',
  'Online',
  ' online ',
  'removed',
  'REMOVED',
  'removed now',
  '',
  ' ',
  'gone',
  'online 5',
  'offline\n',
];

const valueSpec: fc.Arbitrary<ValueSpec> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ v: fc.constant('valid' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.record({ v: fc.constant('edge' as const), pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ v: fc.constant('outside' as const), pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ v: fc.constant('garbage' as const), pick: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ v: fc.constant('text' as const), text: oddText }) },
  { weight: 1, arbitrary: fc.record({ v: fc.constant('binary' as const), bytes: fc.array(fc.nat(255), { maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ v: fc.constant('long' as const), length: fc.constantFrom(65, 1024, 1025, 5000) }) },
);

const baseBody: fc.Arbitrary<Body> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      b: fc.constant('value' as const),
      // The first few services most often, so one device's messages meet on the same service.
      service: fc.oneof(
        { weight: 6, arbitrary: fc.nat(3) },
        { weight: 4, arbitrary: fc.nat(SERVICES.length - 1) },
        { weight: 1, arbitrary: fc.constantFrom(...ODD_SERVICES) },
      ),
      index: fc.oneof(
        { weight: 6, arbitrary: fc.constant(0) },
        { weight: 5, arbitrary: fc.integer({ min: 1, max: 3 }) },
        { weight: 1, arbitrary: fc.constantFrom(99, 100, '01', 'x', '0') },
      ),
      // -1: the service's main characteristic (its first required one other than Name)
      characteristic: fc.oneof(
        { weight: 6, arbitrary: fc.constant(-1) },
        { weight: 5, arbitrary: fc.nat(30) },
        { weight: 2, arbitrary: fc.constantFrom(...ODD_CHARACTERISTICS) },
      ),
      value: valueSpec,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      b: fc.constant('meta' as const),
      field: fc.constantFrom('name' as const, 'model' as const, 'firmware' as const, 'manufacturer' as const),
      text: oddText,
    }),
  },
  { weight: 2, arbitrary: fc.record({ b: fc.constant('state' as const), text: fc.constantFrom(...STATE_TEXTS) }) },
  {
    weight: 1,
    arbitrary: fc.record({ b: fc.constant('raw' as const), pick: fc.nat(RAW_TOPICS.length - 1), payload: fc.constantFrom('1', '', 'online', 'x'.repeat(40)) }),
  },
  { weight: 1, arbitrary: fc.record({ b: fc.constant('burst' as const), service: fc.nat(SERVICES.length - 1), count: fc.constantFrom(5, 40, 98, 99, 100) }) },
);

const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 12, arbitrary: baseBody },
  { weight: 1, arbitrary: fc.record({ b: fc.constant('cross' as const), to: fc.nat(5), body: baseBody }) },
);

const message: fc.Arbitrary<MessageSpec> = fc.record({
  slot: fc.nat(5),
  body,
  retain: fc.boolean(),
  binary: fc.oneof({ weight: 12, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.array(fc.nat(255), { minLength: 0, maxLength: 12 }) }),
});

const step: fc.Arbitrary<StepSpec> = fc.oneof(
  { weight: 7, arbitrary: fc.record({ s: fc.constant('publish' as const), messages: fc.array(message, { minLength: 1, maxLength: 12 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      s: fc.constant('write' as const),
      slot: fc.nat(5),
      service: fc.nat(SERVICES.length - 1),
      nth: fc.nat(1),
      characteristic: fc.nat(30),
      value: fc.oneof(
        fc.integer({ min: -10, max: 400 }),
        fc.double({ min: -1e3, max: 1e3, noNaN: true }),
        fc.constantFrom<unknown>(true, false, 0, 1, 'abc', '1', null, 1e10, -1, 0.5, 101, 4294967296),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ s: fc.constant('restart' as const), signal: fc.constantFrom('SIGTERM' as const, 'SIGKILL' as const) }) },
  { weight: 1, arbitrary: fc.record({ s: fc.constant('reconnect' as const), slot: fc.nat(5), how: fc.constantFrom('clean' as const, 'drop' as const) }) },
);

export const scenarioArbitrary: fc.Arbitrary<ScenarioSpec> = fc.record({
  devices: fc.uniqueArray(fc.constantFrom(...DEVICE_POOL), { minLength: 3, maxLength: 6 }),
  steps: fc.array(step, { minLength: 1, maxLength: 8 }),
});

// ---- the concrete scenario (what runs and what a failure prints) ----

export interface Message {
  /** The client that publishes (client id = username = device id). */
  from: string;
  topic: string;
  payload: string | Uint8Array;
  retain: boolean;
}

export type Step =
  | { kind: 'publish'; messages: Message[] }
  | { kind: 'write'; device: string; service: string; nth: number; characteristic: string; value: unknown }
  | { kind: 'restart'; signal: 'SIGTERM' | 'SIGKILL' }
  /** The device's connection ends (clean DISCONNECT, or dropped so the broker sends its last will) and it connects again. */
  | { kind: 'reconnect'; device: string; how: 'clean' | 'drop' };

export interface Scenario {
  devices: string[];
  steps: Step[];
}

/** Patterns of known findings a local hunt can leave out: MQTTKIT_PROP_AVOID=8,9 (keys in test/property/README.md). */
export type Avoid = ReadonlySet<string>;

export function avoidFromEnv(): Avoid {
  return new Set(
    (process.env.MQTTKIT_PROP_AVOID ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

const MAX_RESTARTS = 2;
/**
 * Messages one device may send in a scenario: the broker admits bursts of 500 and cuts off a client
 * past them ([P-18]); sentinels (one a step) need room too.
 */
const MAX_MESSAGES_PER_DEVICE = 400;

/** Turns choices into messages; drops what `avoid` names, and restarts past the second. */
export function materialize(spec: ScenarioSpec, avoid: Avoid = new Set()): Scenario {
  let devices = [...spec.devices];
  if (avoid.has('6')) devices = devices.filter((d) => !RESERVED_IDS.has(d));
  if (avoid.has('serial')) devices = devices.filter((d) => d.length > 1);
  if (devices.length === 0) devices = ['esp8266_12345678'];
  const at = (slot: number) => devices[slot % devices.length]!;
  const indexing = new Map<string, 'indexed' | 'unindexed'>();
  const steps: Step[] = [];
  let restarts = 0;
  const sent = new Map<string, number>();
  const admit = (from: string) => {
    const count = (sent.get(from) ?? 0) + 1;
    sent.set(from, count);
    return count <= MAX_MESSAGES_PER_DEVICE;
  };
  for (const s of spec.steps) {
    if (s.s === 'restart') {
      if (++restarts <= MAX_RESTARTS) steps.push({ kind: 'restart', signal: s.signal });
      continue;
    }
    if (s.s === 'reconnect') {
      steps.push({ kind: 'reconnect', device: at(s.slot), how: s.how });
      continue;
    }
    if (s.s === 'write') {
      const service = SERVICES[s.service % SERVICES.length]!;
      const writable = characteristicsOf(service).filter((c) => c.props.perms.includes('pw') && c.props.format !== 'tlv8');
      if (writable.length === 0) continue;
      const characteristic = writable[s.characteristic % writable.length]!.name;
      steps.push({ kind: 'write', device: at(s.slot), service, nth: s.nth, characteristic, value: s.value });
      continue;
    }
    const messages: Message[] = [];
    for (const m of s.messages) {
      const from = at(m.slot);
      let owner = from;
      let b = m.body;
      if (b.b === 'cross') {
        owner = at(b.to);
        b = b.body;
      }
      if (b.b === 'burst') {
        const service = SERVICES[b.service % SERVICES.length]!;
        const first = characteristicsOf(service).find((c) => c.name !== 'Name' && c.props.perms.includes('pr'));
        if (!first) continue;
        if (avoid.has('8') && (indexing.get(`${owner}|${service}`) ?? 'indexed') !== 'indexed') continue;
        if (avoid.has('8')) indexing.set(`${owner}|${service}`, 'indexed');
        for (let i = 1; i <= b.count && admit(from); i++) {
          messages.push({
            from,
            topic: `HomeKit/${owner}/${service}/${i}/${first.name}`,
            payload: renderValue(first.props, { v: 'valid', frac: 0.5 }),
            retain: m.retain,
          });
        }
        continue;
      }
      const rendered = renderBody(owner, b, avoid);
      if (!rendered) continue;
      if (avoid.has('8') && rendered.address) {
        // finding 8: one device using the same service type both indexed and unindexed
        const key = `${owner}|${rendered.address.service}`;
        const mode = rendered.address.index === 0 ? 'unindexed' : 'indexed';
        if ((indexing.get(key) ?? mode) !== mode) continue;
        indexing.set(key, mode);
      }
      const payload = m.binary ? Uint8Array.from(m.binary) : rendered.payload;
      // 'astral': text beyond the BMP, which HAP-NodeJS counts as two units per character (new finding)
      if (avoid.has('astral') && typeof payload === 'string' && /[\u{10000}-\u{10FFFF}]/u.test(payload)) continue;
      if (admit(from)) messages.push({ from, topic: rendered.topic, payload, retain: m.retain });
    }
    if (messages.length > 0) steps.push({ kind: 'publish', messages });
  }
  return { devices, steps };
}

function renderBody(id: string, b: Body, avoid: Avoid): { topic: string; payload: string; address?: { service: string; index: number } } | undefined {
  const base = `HomeKit/${id}`;
  switch (b.b) {
    case 'meta':
      return { topic: `${base}/$${b.field}`, payload: b.text };
    case 'state':
      return { topic: `${base}/$state`, payload: b.text };
    case 'raw': {
      const topic = RAW_TOPICS[b.pick % RAW_TOPICS.length]!(id);
      if (avoid.has('7') && topic.length > 300) return undefined;
      return { topic, payload: b.payload };
    }
    case 'cross':
      return renderBody(id, b.body, avoid);
    case 'burst':
      return undefined; // expanded by materialize
    case 'value': {
      const service = typeof b.service === 'number' ? SERVICES[b.service % SERVICES.length]! : b.service;
      if (avoid.has('7') && service.length > 300) return undefined;
      const own = characteristicsOf(service);
      const main = own.find((c) => c.name !== 'Name')?.name ?? 'On';
      const characteristic =
        b.characteristic === -1
          ? main
          : typeof b.characteristic === 'number'
            ? own.length > 0
              ? own[b.characteristic % own.length]!.name
              : 'On'
            : b.characteristic;
      if (avoid.has('7') && characteristic.length > 300) return undefined;
      if (avoid.has('9') && (characteristic === 'Name' || characteristic === 'ConfiguredName')) return undefined;
      const props = own.find((c) => c.name === characteristic)?.props ?? propsOf(characteristic);
      const topic = b.index === 0 ? `${base}/${service}/${characteristic}` : `${base}/${service}/${b.index}/${characteristic}`;
      const index = typeof b.index === 'number' ? b.index : -1;
      return { topic, payload: renderValue(props, b.value), ...(index >= 0 ? { address: { service, index } } : {}) };
    }
  }
}

const GARBAGE = [
  'abc',
  '',
  ' ',
  'NaN',
  'Infinity',
  '-Infinity',
  '0x10',
  '1,5',
  '١٢',
  '--1',
  '1e',
  '.',
  '+',
  '1_000',
  'true',
  'null',
  '[1]',
  '{"v":1}',
  '0b1',
  '½',
  '1e-400',
  '-0',
  '9007199254740993',
  '1e309',
  '-1e309',
  '0.1.2',
  '1 2',
  '\u00a01',
  '01',
  '+5',
  '5.',
  '.5',
  'on',
  'off',
  'yes',
  '2',
  '-1',
  '1.0',
  '0.0',
  'TRUE',
  'False',
];

function renderValue(props: Props | undefined, spec: ValueSpec): string {
  switch (spec.v) {
    case 'garbage':
      return GARBAGE[spec.pick % GARBAGE.length]!;
    case 'text':
      return spec.text;
    case 'binary':
      return Buffer.from(spec.bytes).toString('base64');
    case 'long':
      return 'x'.repeat(spec.length);
    default:
      break;
  }
  if (!props) return spec.v === 'valid' ? '1' : '-1';
  if (props.format === 'bool') {
    const valid = ['1', '0', 'true', 'false', 'on', 'off', 'TRUE', 'Off', ' 1 '];
    const wrong = ['2', '-1', '1.0', 'yes', 'no', 'onn'];
    if (spec.v === 'valid') return valid[Math.floor(spec.frac * valid.length) % valid.length]!;
    if (spec.v === 'edge') return valid[spec.pick % valid.length]!;
    return wrong[spec.pick % wrong.length]!;
  }
  if (props.format === 'string') {
    const texts = ['Lamp', 'ab', 'a'.repeat(64), 'a'.repeat(65), '𝐀'.repeat(40), 'x\ny', '<b>x</b>'];
    return spec.v === 'valid' ? 'Kitchen' : texts[(spec.v === 'edge' || spec.v === 'outside' ? spec.pick : 0) % texts.length]!;
  }
  if (props.format === 'tlv8' || props.format === 'data') {
    const blobs = ['AQEA', 'AA==', '', '!!!!', 'AQ', '/////w=='];
    return spec.v === 'valid' ? 'AQEA' : blobs[(spec.v === 'edge' || spec.v === 'outside' ? spec.pick : 0) % blobs.length]!;
  }
  const integer = props.format !== 'float';
  const formatMin = { uint8: 0, uint16: 0, uint32: 0, uint64: 0, int: -2147483648 }[props.format] ?? -1e6;
  const formatMax = { uint8: 255, uint16: 65535, uint32: 4294967295, uint64: 9007199254740991, int: 2147483647 }[props.format] ?? 1e6;
  const min = props.minValue ?? formatMin;
  const max = props.maxValue ?? formatMax;
  const step = props.minStep ?? (integer ? 1 : 0.5);
  if (spec.v === 'valid') {
    if (props.validValues && props.validValues.length > 0)
      return String(props.validValues[Math.floor(spec.frac * props.validValues.length) % props.validValues.length]);
    const steps = Math.floor((max - min) / step);
    return trimNumber(min + Math.round(spec.frac * steps) * step);
  }
  if (spec.v === 'edge') {
    const edges = [min, max, min + step, max - step, min + step / 2, min + step / 3, (min + max) / 2 + step / 7, -0];
    const value = edges[spec.pick % edges.length]!;
    return Object.is(value, -0) ? '-0' : trimNumber(value);
  }
  const outside = [min - step, max + step, max * 10 + 1, min - 1000, max + 0.0001, 1e308, -1e308];
  if (props.validValues && props.validValues.length > 0) outside.push(Math.max(...props.validValues) + 1);
  return trimNumber(outside[spec.pick % outside.length]!);
}

function trimNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(12)));
}

// ---- printing ----

export function describePayload(payload: string | Uint8Array): string {
  if (typeof payload === 'string') return show(payload, 160);
  return `<${payload.length} bytes: ${Buffer.from(payload).toString('hex')}>`;
}

function shortTopic(topic: string): string {
  return topic.length <= 160 ? topic : `${topic.slice(0, 100)}…(${topic.length} chars)`;
}

export function describeStep(step: Step): string[] {
  switch (step.kind) {
    case 'publish':
      return ['publish', ...step.messages.map((m) => `  ${m.from} -> ${shortTopic(m.topic)}  ${describePayload(m.payload)}${m.retain ? '  (retained)' : ''}`)];
    case 'write':
      return [`HomeKit write: ${step.device} ${step.service}${step.nth ? `#${step.nth + 1}` : ''} ${step.characteristic} = ${show(step.value)}`];
    case 'restart':
      return [`restart the hub (${step.signal === 'SIGKILL' ? 'kill -9' : 'SIGTERM'}) on the same data dir`];
    case 'reconnect':
      return [`${step.device} ${step.how === 'clean' ? 'disconnects cleanly' : 'drops its connection (the broker sends its last will)'} and connects again`];
  }
}

/** One line per message, numbered steps: what a failing case prints. */
export function describeScenario(scenario: Scenario): string {
  const lines = [`devices: ${scenario.devices.map((d) => show(d, 70)).join(', ')}`];
  scenario.steps.forEach((step, i) => {
    const [head, ...rest] = describeStep(step);
    lines.push(`step ${i + 1}: ${head}`, ...rest);
  });
  return lines.join('\n');
}
