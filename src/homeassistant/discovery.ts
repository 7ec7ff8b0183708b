/**
 * Home Assistant MQTT discovery ([P-26]): what Home Assistant needs to show a device's services as its
 * own entities, read from the topics the device already publishes. Pure: a device record and the HAP
 * facts of its characteristics in, `homeassistant/<component>/<node_id>/<object_id>/config` messages out.
 * Home Assistant then reads and writes the device's own topics (`HomeKit/<id>/…`, `…/set`), so no value
 * passes through the hub twice.
 *
 * The documented schemas: https://www.home-assistant.io/integrations/mqtt/ (sensor, binary_sensor,
 * switch, light, cover, lock). Payloads here are strings Home Assistant compares as they are, so every
 * state goes through a value_template that accepts each spelling the protocol allows ([P-9]: 1/0,
 * true/false, on/off).
 */
import type { CharacteristicSpec } from '../core/coerce.js';
import type { DeviceRecord, ServiceRecord } from '../core/device.js';
import { deviceFieldTopic, setTopic, valueTopic } from '../core/topic.js';

export const DEFAULT_DISCOVERY_PREFIX = 'homeassistant';

export interface DiscoveryMessage {
  topic: string;
  /** The config as JSON; '' clears it (a removed device or entity). */
  payload: string;
}

/** What the catalog knows of a characteristic of a service, or undefined for an unknown one. */
export type Facts = (service: string, characteristic: string) => CharacteristicSpec | undefined;

type Config = Record<string, unknown>;

/** A state that is true for 1, true, on (any case), as the protocol allows. */
const TRUE = "value | lower in ['1', 'true', 'on']";
const onOff = `{{ 'ON' if ${TRUE} else 'OFF' }}`;

/** Binary sensors: HAP characteristic → Home Assistant device_class, and whether HAP's 1 means "on". */
const BINARY: Readonly<Record<string, { deviceClass: string; oneIsOn: boolean }>> = {
  MotionDetected: { deviceClass: 'motion', oneIsOn: true },
  OccupancyDetected: { deviceClass: 'occupancy', oneIsOn: true },
  // HAP: 0 = contact detected (closed), 1 = not detected (open); HA's opening: on = open.
  ContactSensorState: { deviceClass: 'opening', oneIsOn: true },
  LeakDetected: { deviceClass: 'moisture', oneIsOn: true },
  SmokeDetected: { deviceClass: 'smoke', oneIsOn: true },
  CarbonMonoxideDetected: { deviceClass: 'carbon_monoxide', oneIsOn: true },
  CarbonDioxideDetected: { deviceClass: 'gas', oneIsOn: true },
  StatusLowBattery: { deviceClass: 'battery', oneIsOn: true },
  OutletInUse: { deviceClass: 'power', oneIsOn: true },
};

/** Numeric sensors: HAP characteristic → device_class and unit (HA's spelling). */
const SENSOR: Readonly<Record<string, { deviceClass?: string; unit?: string; stateClass?: string }>> = {
  CurrentTemperature: { deviceClass: 'temperature', unit: '°C', stateClass: 'measurement' },
  CurrentRelativeHumidity: { deviceClass: 'humidity', unit: '%', stateClass: 'measurement' },
  CurrentAmbientLightLevel: { deviceClass: 'illuminance', unit: 'lx', stateClass: 'measurement' },
  BatteryLevel: { deviceClass: 'battery', unit: '%', stateClass: 'measurement' },
  CarbonDioxideLevel: { deviceClass: 'carbon_dioxide', unit: 'ppm', stateClass: 'measurement' },
  CarbonMonoxideLevel: { deviceClass: 'carbon_monoxide', unit: 'ppm', stateClass: 'measurement' },
  AirQuality: { stateClass: 'measurement' },
  PM2_5Density: { deviceClass: 'pm25', unit: 'µg/m³', stateClass: 'measurement' },
  PM10Density: { deviceClass: 'pm10', unit: 'µg/m³', stateClass: 'measurement' },
};

const UNITS: Readonly<Record<string, string>> = { celsius: '°C', percentage: '%', lux: 'lx', arcdegrees: '°', seconds: 's' };

/** Home Assistant's ids allow [a-zA-Z0-9_-]; anything else becomes `_`. */
export function haId(text: string): string {
  return text.replace(/[^a-zA-Z0-9_-]/g, '_');
}

function snake(text: string): string {
  return text
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^a-zA-Z0-9]+/g, '_')
    .toLowerCase();
}

/** The entity's object id: the service (with its index) and, where a service has several, the characteristic. */
function objectId(service: ServiceRecord, characteristic?: string): string {
  const base = `${snake(service.service)}${service.index ? `_${service.index}` : ''}`;
  return characteristic ? `${base}_${snake(characteristic)}` : base;
}

function entityName(service: ServiceRecord, what: string): string {
  return `${service.index ? `${what} ${service.index}` : what}`;
}

/** Every discovery config for a device, by topic (one entity per service, or per readable characteristic). */
export function discoveryMessages(device: DeviceRecord, facts: Facts, prefix = DEFAULT_DISCOVERY_PREFIX): DiscoveryMessage[] {
  const node = haId(device.id);
  const common: Config = {
    availability_topic: deviceFieldTopic(device.id, 'state'),
    // [P-20] a sleeping device's values stand until it wakes: available, like an online one.
    // `sleeping` may carry the seconds until it wakes (`sleeping 3600`).
    availability_template: "{{ 'online' if value.split(' ')[0] in ['online', 'sleeping'] else 'offline' }}",
    device: {
      identifiers: [device.id],
      name: device.meta.name ?? device.id,
      ...(device.meta.manufacturer ? { manufacturer: device.meta.manufacturer } : {}),
      ...(device.meta.model ? { model: device.meta.model } : {}),
      ...(device.meta.firmware ? { sw_version: device.meta.firmware } : {}),
    },
  };
  const out: DiscoveryMessage[] = [];
  const add = (component: string, id: string, config: Config) =>
    out.push({
      topic: `${prefix}/${component}/${node}/${id}/config`,
      payload: JSON.stringify({ ...config, ...common, unique_id: `mqttkit:${device.id}:${id}`, object_id: `${node}_${id}` }),
    });

  for (const service of device.services) {
    const has = (c: string) => c in service.values;
    const state = (c: string) => valueTopic(device.id, service, c);
    const command = (c: string) => setTopic(device.id, service, c);
    const covered = new Set<string>();

    if ((service.service === 'Switch' || service.service === 'Outlet') && has('On')) {
      add('switch', objectId(service), {
        name: entityName(service, service.service === 'Outlet' ? 'Outlet' : 'Switch'),
        ...(service.service === 'Outlet' ? { device_class: 'outlet' } : {}),
        state_topic: state('On'),
        value_template: onOff,
        state_on: 'ON',
        state_off: 'OFF',
        command_topic: command('On'),
        payload_on: '1',
        payload_off: '0',
      });
      covered.add('On');
    } else if (service.service === 'Lightbulb' && has('On')) {
      const light: Config = {
        name: entityName(service, 'Light'),
        state_topic: state('On'),
        state_value_template: onOff,
        command_topic: command('On'),
        payload_on: '1',
        payload_off: '0',
      };
      if (has('Brightness')) {
        Object.assign(light, { brightness_state_topic: state('Brightness'), brightness_command_topic: command('Brightness'), brightness_scale: 100 });
        covered.add('Brightness');
      }
      if (has('ColorTemperature')) {
        Object.assign(light, { color_temp_state_topic: state('ColorTemperature'), color_temp_command_topic: command('ColorTemperature') });
        covered.add('ColorTemperature');
      }
      add('light', objectId(service), light);
      covered.add('On');
    } else if (service.service === 'WindowCovering' && has('CurrentPosition')) {
      add('cover', objectId(service), {
        name: entityName(service, 'Cover'),
        position_topic: state('CurrentPosition'),
        set_position_topic: command('TargetPosition'),
        position_open: 100,
        position_closed: 0,
      });
      covered.add('CurrentPosition');
      covered.add('TargetPosition');
    } else if (service.service === 'LockMechanism' && has('LockCurrentState')) {
      add('lock', objectId(service), {
        name: entityName(service, 'Lock'),
        state_topic: state('LockCurrentState'),
        // HAP: 0 unsecured, 1 secured, 2 jammed, 3 unknown.
        value_template: "{{ 'UNLOCKED' if value == '0' else ('LOCKED' if value == '1' else ('JAMMED' if value == '2' else 'UNKNOWN')) }}",
        command_topic: command('LockTargetState'),
        payload_lock: '1',
        payload_unlock: '0',
        state_locked: 'LOCKED',
        state_unlocked: 'UNLOCKED',
        state_jammed: 'JAMMED',
      });
      covered.add('LockCurrentState');
      covered.add('LockTargetState');
    }

    // What is left and readable: binary sensors and numeric sensors.
    for (const characteristic of Object.keys(service.values)) {
      if (covered.has(characteristic) || characteristic === 'Name') continue;
      const spec = facts(service.service, characteristic);
      if (!spec?.perms.includes('pr')) continue;
      const binary = BINARY[characteristic];
      if (binary) {
        add('binary_sensor', objectId(service, characteristic), {
          name: entityName(service, characteristic.replace(/([a-z])([A-Z])/g, '$1 $2')),
          device_class: binary.deviceClass,
          state_topic: state(characteristic),
          value_template: binary.oneIsOn ? onOff : `{{ 'OFF' if ${TRUE} else 'ON' }}`,
          payload_on: 'ON',
          payload_off: 'OFF',
        });
        continue;
      }
      if (!['float', 'int', 'uint8', 'uint16', 'uint32', 'uint64'].includes(spec.format)) continue;
      const known = SENSOR[characteristic];
      const unit = known?.unit ?? (spec.unit ? UNITS[spec.unit] : undefined);
      add('sensor', objectId(service, characteristic), {
        name: entityName(service, characteristic.replace(/^Current/, '').replace(/([a-z])([A-Z])/g, '$1 $2')),
        state_topic: state(characteristic),
        ...(known?.deviceClass ? { device_class: known.deviceClass } : {}),
        ...(unit ? { unit_of_measurement: unit } : {}),
        ...(known?.stateClass ? { state_class: known.stateClass } : {}),
      });
    }
  }
  return out;
}
