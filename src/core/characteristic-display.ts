/**
 * How a HomeKit characteristic reads for people: its label, its unit and how a value shows
 * ("Temperature 20.5 °C", "Humidity 46 %", "On", "Motion detected"). One table for every place that
 * shows values: the web server serves the compiled file to the dashboard at `/shared/characteristic-display.js`
 * (docs/api.md), and the CLI can import it. Dependency-free on purpose: the browser loads it as is.
 */

/** What the API says of a characteristic (GET /api/devices: `format`, `unit`). */
export interface CharacteristicFacts {
  name: string;
  format?: string | null;
  unit?: string | null;
}

/** Labels for names that read badly when split ("CurrentTemperature" is "Temperature"); others are split at capitals. */
const LABELS: Readonly<Record<string, string>> = {
  On: 'Power',
  CurrentTemperature: 'Temperature',
  TargetTemperature: 'Target temperature',
  CurrentRelativeHumidity: 'Humidity',
  TargetRelativeHumidity: 'Target humidity',
  CurrentAmbientLightLevel: 'Light level',
  MotionDetected: 'Motion',
  ContactSensorState: 'Contact',
  OccupancyDetected: 'Occupancy',
  LeakDetected: 'Leak',
  SmokeDetected: 'Smoke',
  CarbonDioxideDetected: 'CO₂ alarm',
  CarbonDioxideLevel: 'CO₂',
  CarbonMonoxideDetected: 'CO alarm',
  CurrentPosition: 'Position',
  TargetPosition: 'Target position',
  StatusLowBattery: 'Battery low',
  BatteryLevel: 'Battery',
  OutletInUse: 'In use',
  CurrentHeatingCoolingState: 'Heating/cooling',
  TargetHeatingCoolingState: 'Target mode',
  TemperatureDisplayUnits: 'Display units',
  ColorTemperature: 'Colour temperature',
  RotationSpeed: 'Speed',
};

/** HAP units as people write them. */
const UNITS: Readonly<Record<string, string>> = {
  celsius: '°C',
  percentage: '%',
  arcdegrees: '°',
  lux: 'lx',
  seconds: 's',
};

/** Booleans (and 0/1 states) that say what they mean: [when false/0, when true/1]. */
const WORDS: Readonly<Record<string, readonly [string, string]>> = {
  On: ['Off', 'On'],
  Active: ['Inactive', 'Active'],
  MotionDetected: ['No motion', 'Motion detected'],
  OccupancyDetected: ['Not occupied', 'Occupied'],
  ContactSensorState: ['Closed', 'Open'],
  LeakDetected: ['No leak', 'Leak detected'],
  SmokeDetected: ['No smoke', 'Smoke detected'],
  CarbonDioxideDetected: ['Normal', 'CO₂ high'],
  CarbonMonoxideDetected: ['Normal', 'CO high'],
  StatusLowBattery: ['Battery OK', 'Battery low'],
  OutletInUse: ['Not in use', 'In use'],
  StatusActive: ['Inactive', 'Active'],
  StatusFault: ['No fault', 'Fault'],
};

/** Service types as people say them ("TemperatureSensor" is "Temperature sensor"). */
export function serviceLabel(service: string): string {
  return split(service);
}

/** The characteristic's label ("Temperature", "Brightness"). */
export function label(c: CharacteristicFacts): string {
  return LABELS[c.name] ?? split(c.name);
}

/** The unit to write after a number ('°C', '%'), or ''. */
export function unitText(c: CharacteristicFacts): string {
  return (c.unit && UNITS[c.unit]) ?? '';
}

/** The value alone as people read it ("20.5 °C", "On", "Motion detected", "–" when unknown). */
export function valueText(c: CharacteristicFacts, value: unknown): string {
  if (value === null || value === undefined || value === '') return '–';
  const words = WORDS[c.name];
  if (words && (typeof value === 'boolean' || value === 0 || value === 1)) return words[Number(value)] as string;
  if (typeof value === 'boolean') return value ? 'Yes' : 'No';
  if (typeof value === 'number') {
    const shown = Number.isInteger(value) ? String(value) : String(Math.round(value * 10) / 10);
    const unit = unitText(c);
    return unit ? `${shown} ${unit}` : shown;
  }
  return String(value);
}

/** Label and value together ("Temperature 20.5 °C"); a value that names itself ("Motion detected", "On") stands alone. */
export function reading(c: CharacteristicFacts, value: unknown): string {
  if (WORDS[c.name] && value !== null && value !== undefined) return valueText(c, value);
  return `${label(c)} ${valueText(c, value)}`;
}

/** How a chart's y axis runs: 'step' (0/1), 'percent' (0-100) or 'auto'. */
export function axisKind(c: CharacteristicFacts): 'step' | 'percent' | 'auto' {
  if (c.format === 'bool' || WORDS[c.name]) return 'step';
  if (c.unit === 'percentage') return 'percent';
  return 'auto';
}

function split(name: string): string {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').split(' ');
  return words.map((w, i) => (i === 0 ? w : w.toLowerCase())).join(' ');
}
