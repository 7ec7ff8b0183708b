# A thermometer and hygrometer that reports every 30 s. On a board: a DHT22 on GPIO 4. On CPython a
# slowly drifting simulated reading. Copy as main.py; see docs/device.md.
import sys

from mqttkit import Device, run_app
from mqttkit import port

DHT_PIN = 4
INTERVAL_S = 30


def main():
    device = Device(name='Thermometer', model='DHT22', firmware='1.0.0')
    interval = device.config.get('interval', INTERVAL_S)

    if sys.implementation.name == 'micropython':
        import dht
        import machine
        sensor = dht.DHT22(machine.Pin(DHT_PIN))

        def read():
            sensor.measure()
            return sensor.temperature(), sensor.humidity()
    else:
        reading = {'t': 20.0}

        def read():
            reading['t'] = round(reading['t'] + 0.1, 1)
            return reading['t'], 50

    def report():
        temperature, humidity = read()
        device.publish('TemperatureSensor', 'CurrentTemperature', temperature)
        device.publish('HumiditySensor', 'CurrentRelativeHumidity', humidity)

    report()
    device.every(interval, report)
    device.run()


run_app(main)
