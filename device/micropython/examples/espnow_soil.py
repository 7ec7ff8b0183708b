# An ESP-NOW peripheral on a battery (ESP32): wakes every 10 minutes, sends its soil temperature and its
# valve state, takes a HomeKit write for the valve waiting at the gateway, and deep-sleeps again.
# config.json: {"device_id": "soil-1"}; espnow_pair.json (from `mqttkit espnow pair`) once, over USB.
import machine

from mqttkit.espnow import Peripheral

valve = machine.Pin(4, machine.Pin.OUT)
sensor = machine.ADC(machine.Pin(34))

node = Peripheral()
node.set_meta(name='Soil 1')
node.on_set('Switch', 'On', lambda on: valve.value(1 if on else 0))
node.publish('TemperatureSensor', 'CurrentTemperature', round(sensor.read_u16() / 65535 * 50, 1))
node.publish('Switch', 'On', valve.value())
node.sleep(600)
