/**
 * `GET /metrics`: the figures of `GET /api/metrics` in Prometheus's text exposition format (0.0.4), so
 * a Prometheus server (or anything that scrapes that format) can watch the hub. A pure function: the
 * route gathers the numbers, this only writes them.
 */

/** The content type Prometheus expects for the text format. */
export const PROMETHEUS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface HubMetrics {
  uptimeS: number;
  devices: number;
  messages: { received: number; applied: number; refused: number };
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  faults: { unhandledRejections: number; uncaughtExceptions: number; listenerErrors: number };
}

interface Family {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  samples: Array<[labels: Record<string, string>, value: number]>;
}

/** A label value escaped as the format asks (backslash, double quote, newline). */
const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

const sample = (name: string, labels: Record<string, string>, value: number) => {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return `${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${Number.isFinite(value) ? value : 'NaN'}`;
};

export function prometheusText(m: HubMetrics): string {
  const families: Family[] = [
    { name: 'mqttkit_uptime_seconds', type: 'gauge', help: 'Seconds since the hub started.', samples: [[{}, m.uptimeS]] },
    { name: 'mqttkit_devices', type: 'gauge', help: 'Devices the hub knows.', samples: [[{}, m.devices]] },
    {
      name: 'mqttkit_messages_total',
      type: 'counter',
      help: 'MQTT messages from devices: received, applied to a value, refused.',
      samples: [
        [{ outcome: 'received' }, m.messages.received],
        [{ outcome: 'applied' }, m.messages.applied],
        [{ outcome: 'refused' }, m.messages.refused],
      ],
    },
    { name: 'mqttkit_resident_memory_bytes', type: 'gauge', help: 'Resident set size of the hub process.', samples: [[{}, m.rssBytes]] },
    { name: 'mqttkit_heap_used_bytes', type: 'gauge', help: 'JavaScript heap in use.', samples: [[{}, m.heapUsedBytes]] },
    { name: 'mqttkit_external_memory_bytes', type: 'gauge', help: 'Memory outside the heap (buffers, array buffers).', samples: [[{}, m.externalBytes]] },
    {
      name: 'mqttkit_cpu_seconds_total',
      type: 'counter',
      help: 'CPU time the hub used, by mode.',
      samples: [
        [{ mode: 'user' }, m.cpuUserMs / 1000],
        [{ mode: 'system' }, m.cpuSystemMs / 1000],
      ],
    },
    {
      name: 'mqttkit_faults_total',
      type: 'counter',
      help: 'Bugs the hub survived since it started (anything but 0 is worth a bug report).',
      samples: [
        [{ kind: 'unhandled_rejection' }, m.faults.unhandledRejections],
        [{ kind: 'uncaught_exception' }, m.faults.uncaughtExceptions],
        [{ kind: 'listener_error' }, m.faults.listenerErrors],
      ],
    },
  ];
  const lines = families.flatMap((f) => [`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...f.samples.map(([l, v]) => sample(f.name, l, v))]);
  return `${lines.join('\n')}\n`;
}
