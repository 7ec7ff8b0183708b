# A battery sensor that wakes, reports, and deep-sleeps. HomeKit keeps showing its last value while it
# sleeps (it announces `$state sleeping <seconds>`); commands sent meanwhile wait for it (retained or
# queued by the hub). On ESP8266 wire GPIO 16 to RST so the RTC can wake it. See docs/device.md.
import sys

from mqttkit import Device, run_app
from mqttkit import port

SLEEP_S = 600


def main():
    device = Device(name='Garden sensor', model='ESP8266 DS18B20', firmware='1.0.0')
    sleep_s = device.config.get('sleep', SLEEP_S)
    if sys.implementation.name == 'micropython':
        import ds18x20
        import machine
        import onewire
        bus = ds18x20.DS18X20(onewire.OneWire(machine.Pin(4)))
        roms = bus.scan()
        bus.convert_temp()
        port.sleep_ms(750)
        temperature = bus.read_temp(roms[0])
    else:
        temperature = 12.5
    device.publish('TemperatureSensor', 'CurrentTemperature', round(temperature, 1))
    # Wait until connected and the value is out, a few seconds at most, then sleep.
    deadline = port.ticks_ms() + 10000
    while (device.queue or device.inflight or not device.connected) and port.ticks_diff(deadline, port.ticks_ms()) > 0:
        device.step(50)
    device.sleep(sleep_s)


run_app(main)
